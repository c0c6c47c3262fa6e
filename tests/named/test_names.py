"""Named dimensions: every documented rule, on plaintext NamedArrays and on shared tensors."""

from __future__ import annotations

import numpy as np
import pytest

import crypten_lite as cl
from crypten_lite.errors import ShareError
from crypten_lite.named import NamedArray
from crypten_lite.runtime.testing import PartyFailure, run_parties

A = np.arange(24, dtype=np.float64).reshape(2, 3, 4)


def _plain(fn):
    out = fn(lambda arr, names=None: NamedArray(arr, names))
    return out.names, np.asarray(out.array, dtype=np.float64)


def _shared(fn):
    def job(session):
        out = fn(lambda arr, names=None: cl.cryptensor(arr, src=0, names=names))
        return out.names, out.get_plain_text()

    return run_parties(job, 2)[0]


def both(fn):
    """Run ``fn(make)`` on plain and shared tensors; both must give the same names/values."""
    plain_names, plain_values = _plain(fn)
    shared_names, shared_values = _shared(fn)
    assert plain_names == shared_names
    np.testing.assert_allclose(shared_values, plain_values, atol=1e-3)
    return plain_names, plain_values


def both_raise(fn, pattern):
    with pytest.raises(RuntimeError, match=pattern):
        _plain(fn)

    def job(session):
        with pytest.raises(RuntimeError, match=pattern):
            fn(lambda arr, names=None: cl.cryptensor(arr, src=0, names=names))
        return session.provider.requests  # name errors are raised before any triple

    assert run_parties(job, 2) == [0, 0]


def test_construction_and_validation():
    names, _ = both(lambda m: m(A, ("N", "C", None)))
    assert names == ("N", "C", None)
    both_raise(lambda m: m(A, ("N", "C")), r"Number of names \(2\) and number of dimensions")
    both_raise(lambda m: m(A, ("N", "N", "C")), "duplicate names")


def test_rename_positional_keyword_ellipsis_and_none():
    assert both(lambda m: m(A, ("N", "C", "W")).rename("B", ...))[0] == ("B", "C", "W")
    assert both(lambda m: m(A, ("N", "C", "W")).rename(C="channels"))[0] == ("N", "channels", "W")
    assert both(lambda m: m(A, ("N", "C", "W")).rename(None))[0] == (None, None, None)
    both_raise(lambda m: m(A, ("N", "C", "W")).rename(Z="Y"), "dim 'Z' does not exist")
    both_raise(
        lambda m: m(A, ("N", "C", "W")).rename("A", X="Y"), "either positional args or keyword"
    )


def test_refine_names_rules():
    assert both(lambda m: m(A).refine_names("N", ..., "W"))[0] == ("N", None, "W")
    both_raise(
        lambda m: m(A, ("N", "C", None)).refine_names("N", "D", None),
        "'C' is different from 'D' at index 1",
    )
    both_raise(
        lambda m: m(A, ("N", "C", None)).refine_names("N", None, None), "more specific than None"
    )
    both_raise(lambda m: m(A).refine_names("N", "C"), "different number of dims")


def test_align_to_and_align_as():
    names, values = both(lambda m: m(A, ("N", "C", "W")).align_to("W", "N", "C"))
    assert names == ("W", "N", "C")
    np.testing.assert_array_equal(values, A.transpose(2, 0, 1))
    names, values = both(lambda m: m(A, ("N", "C", "W")).align_to("W", "X", ...))
    assert names == ("W", "X", "N", "C") and values.shape == (4, 1, 2, 3)
    names, _ = both(lambda m: m(A[0], ("C", "W")).align_as(m(A, ("N", "C", "W"))))
    assert names == ("N", "C", "W")
    both_raise(lambda m: m(A, ("N", None, "W")).align_to("W", "N"), "All input dims must be named")
    both_raise(lambda m: m(A, ("N", "C", "W")).align_to("N", "C"), "Cannot find dim 'W'")


def test_flatten_and_unflatten_by_name():
    names, values = both(lambda m: m(A, ("N", "C", "W")).flatten(["C", "W"], "CW"))
    assert names == ("N", "CW") and values.shape == (2, 12)
    names, values = both(
        lambda m: (
            m(A, ("N", "C", "W")).flatten(["C", "W"], "CW").unflatten("CW", (("C", 3), ("W", 4)))
        )
    )
    assert names == ("N", "C", "W")
    np.testing.assert_array_equal(values, A)
    both_raise(lambda m: m(A, ("N", "C", "W")).flatten(["N", "W"], "NW"), "consecutive")


def test_transpose_permute_by_name_and_lookup_errors():
    names, values = both(lambda m: m(A, ("N", "C", "W")).transpose("N", "W"))
    assert names == ("W", "C", "N")
    np.testing.assert_array_equal(values, A.swapaxes(0, 2))
    assert both(lambda m: m(A, ("N", "C", "W")).permute("C", "W", "N"))[0] == ("C", "W", "N")
    both_raise(
        lambda m: m(A, ("N", "C", "W")).sum("Z"), r"Name 'Z' not found in Tensor\['N', 'C', 'W'\]"
    )


def test_pointwise_ops_keep_names_and_broadcasting_unifies_from_the_right():
    assert both(lambda m: -m(A, ("N", "C", "W")) * 2)[0] == ("N", "C", "W")
    names, _ = both(lambda m: m(A, ("N", None, "W")) + m(A[0], ("C", None)))
    assert names == ("N", "C", "W")
    both_raise(
        lambda m: m(A[0], ("N", "C")) + m(A[0, 0], ("N",)),
        "dim 'C' and dim 'N' are at the same position from the right but do not match",
    )
    both_raise(
        lambda m: m(A[0, 0], ("N",)) * m(A[0], ("N", None)),
        "Misaligned dims when attempting to broadcast",
    )


def test_reductions_by_name_drop_the_dim():
    names, values = both(lambda m: m(A, ("N", "C", "W")).sum("C"))
    assert names == ("N", "W")
    np.testing.assert_allclose(values, A.sum(1))
    assert both(lambda m: m(A, ("N", "C", "W")).sum(["N", "W"]))[0] == ("C",)
    assert both(lambda m: m(A, ("N", "C", "W")).mean("W", keepdim=True))[0] == ("N", "C", "W")
    names, values = both(lambda m: _max_values(m(A, ("N", "C", "W"))))
    assert names == ("N", "W")
    np.testing.assert_allclose(values, A.max(1))


def _max_values(x):
    result = x.max("C")
    return result[0] if isinstance(result, tuple) else result


def test_matmul_rule():
    b = np.ones((4, 5))
    assert both(lambda m: m(A, ("N", "C", "W")) @ m(b, ("W", "K")))[0] == ("N", "C", "K")
    assert both(lambda m: m(A[0], ("C", "W")) @ m(b[:, 0], ("W",)))[0] == ("C",)
    both_raise(
        lambda m: m(A[0], ("C", "W")) @ m(np.ones((4, 3)), ("W", "C")),
        "would produce output tensor with duplicate names",
    )


def test_cat_along_a_named_dim_and_indexing():
    names, values = both(lambda m: cl_cat(m, A))
    assert names == ("N", "C", "W") and values.shape == (2, 6, 4)
    assert both(lambda m: m(A, ("N", "C", "W"))[0, :, 1:])[0] == ("C", "W")
    assert both(lambda m: m(A, ("N", "C", "W"))[..., 0])[0] == ("N", "C")
    assert both(lambda m: m(A, ("N", "C", "W"))[:, None])[0] == ("N", None, "C", "W")


def cl_cat(m, a):
    x, y = m(a, ("N", "C", "W")), m(a, ("N", None, "W"))
    if isinstance(x, NamedArray):
        return x._wrap(np.concatenate([x.array, y.array], axis=1), names=("N", "C", "W"))
    return cl.cat([x, y], dim="C")


def test_parties_agree_on_names_before_any_communication_of_shares():
    def job(session):
        mine = ("N", "C") if session.rank == 0 else ("N", "D")
        return cl.cryptensor(
            np.ones((2, 3)) if session.rank == 0 else None, src=0, names=mine
        ).names

    with pytest.raises(PartyFailure, match="expects names"):
        run_parties(job, 2, timeout_s=10)

    def agree(session):
        x = cl.cryptensor(
            np.ones((2, 3)) if session.rank == 0 else None,
            src=0,
            names=("N", "C") if session.rank == 0 else None,
        )
        return x.names

    assert run_parties(agree, 3) == [("N", "C")] * 3
    assert issubclass(ShareError, ValueError)
