"""SecAggParams validation, the neighbour degree and threshold, and the Harary neighbour
graph (symmetric, exactly k-regular, no self-loops, connected; complete when k >= n - 1)."""

from __future__ import annotations

import math
from collections import deque

import pytest

from crypten_lite.edge.secagg_params import SecAggParams, neighbour_graph
from crypten_lite.errors import ConfigError


@pytest.mark.parametrize("k", [3, 5, 7, 1, 0, -2, 2.0, True, "some", None])
def test_neighbours_must_be_auto_all_or_an_even_int_at_least_2(k):
    with pytest.raises(ConfigError, match="neighbours"):
        SecAggParams(neighbours=k)


@pytest.mark.parametrize("t", [0.5, 0.3, 0.0, -0.7, 1.01, 1.5])
def test_fractional_threshold_must_lie_above_one_half(t):
    with pytest.raises(ConfigError, match=r"\(0.5, 1\]"):
        SecAggParams(threshold=t)


@pytest.mark.parametrize("t", [True, "0.6", None, 1, 0, -3])
def test_threshold_type_and_minimum(t):
    with pytest.raises(ConfigError, match="threshold"):
        SecAggParams(threshold=t)


@pytest.mark.parametrize(("k", "t"), [(4, 2), (4, 5), (6, 3), (6, 7), (2, 3), (10, 5)])
def test_int_threshold_outside_half_open_range_is_refused(k, t):
    with pytest.raises(ConfigError, match=r"neighbours/2 < t <= neighbours"):
        SecAggParams(neighbours=k, threshold=t)


@pytest.mark.parametrize(("k", "t"), [(2, 2), (4, 3), (4, 4), (6, 4), (10, 6), (10, 10)])
def test_int_threshold_inside_the_range_is_accepted(k, t):
    assert SecAggParams(neighbours=k, threshold=t).threshold == t


@pytest.mark.parametrize(
    ("neighbours", "n", "degree"),
    [
        ("auto", 3, 2),
        ("auto", 10, 9),
        ("auto", 16, 15),
        ("auto", 17, 2 * math.ceil(math.log2(17))),
        ("auto", 500, 18),
        ("auto", 1024, 20),
        ("all", 5, 4),
        ("all", 100, 99),
        (4, 12, 4),
        (8, 100, 8),
        (8, 5, 4),  # n - 1 < k: every other client
        (6, 6, 5),
        (2, 3, 2),
    ],
)
def test_degree(neighbours, n, degree):
    assert SecAggParams(neighbours=neighbours).degree(n) == degree


@pytest.mark.parametrize(
    ("threshold", "degree", "t"),
    [(0.6, 4, 3), (0.6, 18, 11), (0.6, 2, 2), (0.51, 4, 3), (0.51, 5, 3), (1.0, 5, 5),
     (0.75, 9, 7), (3, 4, 3), (4, 4, 4), (3, 5, 3)],
)
def test_threshold_for(threshold, degree, t):
    got = SecAggParams(threshold=threshold).threshold_for(degree)
    assert got == t
    assert degree < 2 * got <= 2 * degree


@pytest.mark.parametrize(("threshold", "degree"), [(3, 2), (3, 6), (3, 7), (4, 3), (5, 10)])
def test_threshold_for_refuses_an_unsafe_or_impossible_threshold(threshold, degree):
    with pytest.raises(ConfigError, match="does not fit"):
        SecAggParams(threshold=threshold).threshold_for(degree)


def _connected(graph):
    start = next(iter(graph))
    seen, todo = {start}, deque([start])
    while todo:
        for v in graph[todo.popleft()]:
            if v not in seen:
                seen.add(v)
                todo.append(v)
    return seen == set(graph)


@pytest.mark.parametrize(
    ("n", "k"),
    [(5, 2), (6, 2), (7, 4), (12, 4), (13, 6), (30, 8), (100, 14), (257, 18), (9, 6)],
)
def test_neighbour_graph_is_symmetric_regular_loop_free_and_connected(n, k):
    indices = list(range(1, n + 1))
    for _ in range(3):  # a fresh random permutation each time
        graph = neighbour_graph(indices, k)
        assert set(graph) == set(indices)
        for u, near in graph.items():
            assert len(near) == k and len(set(near)) == k
            assert list(near) == sorted(near)
            assert u not in near
            assert set(near) <= set(indices)
            for v in near:
                assert u in graph[v]
        assert _connected(graph)


def test_neighbour_graph_is_random_per_call():
    indices = list(range(1, 41))
    graphs = {tuple(sorted(neighbour_graph(indices, 4).items())) for _ in range(5)}
    assert len(graphs) > 1


def test_neighbour_graph_on_arbitrary_indices():
    indices = [3, 17, 4, 99, 58, 21, 8]
    graph = neighbour_graph(indices, 2)
    assert set(graph) == set(indices)
    assert all(len(near) == 2 for near in graph.values())
    assert _connected(graph)


@pytest.mark.parametrize(("n", "k"), [(5, 4), (5, 6), (3, 2), (4, 3), (8, 7), (8, 100)])
def test_complete_graph_when_degree_reaches_n_minus_1(n, k):
    indices = list(range(1, n + 1))
    graph = neighbour_graph(indices, k)
    assert graph == {u: tuple(v for v in indices if v != u) for u in indices}


def test_neighbour_graph_refuses_bad_input():
    with pytest.raises(ValueError, match="distinct"):
        neighbour_graph([1, 2, 2, 3], 2)
    for degree in (3, 0, 1):
        with pytest.raises(ConfigError, match="even degree"):
            neighbour_graph(list(range(1, 11)), degree)


def test_params_graph_together_give_the_advertised_security_numbers():
    params = SecAggParams()
    d = params.degree(500)
    t = params.threshold_for(d)
    assert (d, t) == (18, 11)
    graph = neighbour_graph(list(range(1, 501)), d)
    assert all(len(v) == 18 for v in graph.values())
