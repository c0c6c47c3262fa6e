"""Offline stores: a dry run records the plan, the stores serve it without a dealer, and
every misuse (another job, rank, world size or generation, a truncated or corrupted file,
a second use, a request off the plan) fails with a StoreError on every party."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest

import crypten_lite as cl
from crypten_lite.config import SessionConfig
from crypten_lite.errors import StoreError
from crypten_lite.protocols import conversion
from crypten_lite.providers.store import (
    PartyStore,
    plan_from_json,
    plan_to_json,
    store_path,
    write_stores,
)
from crypten_lite.runtime import record_plan
from crypten_lite.runtime.testing import PartyFailure, run_parties
from crypten_lite.sharing import reveal

A = np.linspace(-2.0, 2.0, 300)
B = np.linspace(0.5, 3.0, 300)


def _program(session):
    x = cl.cryptensor(A, src=0)
    y = cl.cryptensor(B, src=1 % session.world_size)
    z = (x * y).relu() + (x < y) + (x @ y) * 0.001
    return z.max().get_plain_text(), (x * y).sum().get_plain_text()


def _expected():
    z = np.maximum(A * B, 0) + (A < B) + (A @ B) * 0.001
    return z.max(), (A * B).sum()


def _store_config(directory: Path, job: str | None = "job-1") -> SessionConfig:
    return SessionConfig(provider="OfflineStore", store=str(directory), store_job=job)


def _generate(tmp_path: Path, world: int, job: str = "job-1", name: str = "store") -> Path:
    plan = record_plan(_program, world)
    out = tmp_path / name
    write_stores(plan, world, out, job)
    return out


@pytest.mark.parametrize("world", [2, 3])
def test_stores_serve_the_recorded_plan_without_a_dealer(tmp_path, world):
    out = _generate(tmp_path, world)
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o700
    for rank in range(world):
        assert stat.S_IMODE(os.stat(store_path(out, rank)).st_mode) == 0o600
    results = run_parties(_program, world, config=_store_config(out))
    want = _expected()
    for got in results:
        np.testing.assert_allclose(got, want, atol=2e-3)
    assert not any(out.iterdir())  # read once: nothing left to reuse


def test_a_store_cannot_serve_a_second_job(tmp_path):
    out = _generate(tmp_path, 2)
    run_parties(_program, 2, config=_store_config(out))
    with pytest.raises(PartyFailure, match="cannot open the offline store"):
        run_parties(_program, 2, config=_store_config(out), timeout_s=20)


def test_a_request_off_the_plan_is_refused_by_name(tmp_path):
    out = _generate(tmp_path, 2)

    def other(session):
        x = cl.cryptensor(A, src=0)
        return (x < 0).get_plain_text()  # the plan starts with a product

    off_plan = r"request 0 is monomials \(300,\), but the plan"
    with pytest.raises(PartyFailure, match=off_plan) as info:
        run_parties(other, 2, config=_store_config(out), timeout_s=20)
    assert len(info.value.failures) >= 2  # every party names it

    out = _generate(tmp_path, 2, name="again")

    def longer(session):
        _program(session)
        return cl.cryptensor(A, src=0).relu().get_plain_text()

    with pytest.raises(PartyFailure, match=r"is used up: request 14 \(monomials \(300,\)\)"):
        run_parties(longer, 2, config=_store_config(out), timeout_s=20)


def test_stores_of_another_job_rank_or_world_are_refused(tmp_path):
    out = _generate(tmp_path, 2)
    with pytest.raises(PartyFailure, match="made for job 'job-1', not 'job-2'"):
        run_parties(_program, 2, config=_store_config(out, "job-2"), timeout_s=20)

    out = _generate(tmp_path, 2, name="swapped")
    first, second = store_path(out, 0), store_path(out, 1)
    first.rename(out / "tmp")
    second.rename(first)
    (out / "tmp").rename(second)
    with pytest.raises(PartyFailure, match="belongs to rank 1 of a 2-party job, not rank 0"):
        run_parties(_program, 2, config=_store_config(out), timeout_s=20)

    out = _generate(tmp_path, 2, name="world")
    with pytest.raises(StoreError, match="not rank 0 of 3"):
        PartyStore.open(out, 0, 3)


def test_parties_with_stores_of_different_generations_all_fail(tmp_path):
    one = _generate(tmp_path, 2, name="one")
    two = _generate(tmp_path, 2, name="two")
    store_path(two, 1).replace(store_path(one, 1))
    with pytest.raises(PartyFailure, match="belongs to another job or generation") as info:
        run_parties(_program, 2, config=_store_config(one), timeout_s=20)
    assert set(info.value.failures) >= {0, 1}


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_truncated_or_corrupted_stores_are_refused(tmp_path, damage):
    out = _generate(tmp_path, 2)
    path = store_path(out, 1)
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    else:
        data[len(data) // 2] ^= 0x40
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="corrupted or truncated"):
        PartyStore.open(out, 1, 2)


def test_plans_round_trip_and_generation_refuses_unsafe_targets(tmp_path):
    plan = record_plan(_program, 2)
    again, world = plan_from_json(plan_to_json(plan, 2))
    assert again == plan and world == 2
    with pytest.raises(StoreError, match="not a crypten_lite plan"):
        plan_from_json("{}")
    with pytest.raises(StoreError, match="invalid"):
        plan_from_json('{"version": 1, "world_size": 2, "requests": [["mul", [[-1]]]]}')
    out = tmp_path / "s"
    write_stores(plan, 2, out, "job")
    with pytest.raises(StoreError, match="refusing to overwrite"):
        write_stores(plan, 2, out, "job")
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    with pytest.raises(StoreError, match="writable by group or others"):
        write_stores(plan, 2, shared, "job")
    with pytest.raises(ValueError, match="go together"):
        SessionConfig(provider="OfflineStore")


def test_a_store_reveals_nothing_on_its_own(tmp_path):
    """Party N-1's corrections look uniform (each bit set about half the time) and the
    repr names no randomness."""
    plan = record_plan(_program, 2)
    out = tmp_path / "s"
    write_stores(plan, 2, out, "job")
    store = PartyStore.open(out, 1, 2)
    bits = np.unpackbits(store.corrections.view(np.uint8))
    assert abs(bits.mean() - 0.5) < 0.01
    assert "hidden" in repr(store) and "seed" not in repr(store)


@pytest.mark.parametrize("world", [2, 3])
def test_every_kind_of_correlation_is_served_from_stores(tmp_path, world):
    """Products, matmul, private convolution, dealer truncation, a2b/b2a (AND triples and
    random bits), comparisons and an approximation: the same values as with the dealer
    online."""
    images = np.random.default_rng(3).uniform(-1, 1, (2, 2, 6, 6))
    kernel = np.random.default_rng(4).uniform(-0.5, 0.5, (3, 2, 3, 3))

    def program(session):
        x = cl.cryptensor(A[:36].reshape(6, 6), src=0)
        img = cl.cryptensor(images, src=0)
        w = cl.cryptensor(kernel, src=1)
        binary = x.to(cl.mpc.binary)
        back = binary.to(cl.mpc.arithmetic)
        outs = [x @ x, img.conv2d(w), (x * 0.5).exp(), back, (x > 0.3), x.relu()]
        low_bits = reveal(session.comm, conversion.b2a_bit(session, binary.share))
        return [t.get_plain_text() for t in outs] + [low_bits.astype(np.float64)]

    base = SessionConfig(truncation="dealer")
    plan = record_plan(program, world, config=base)
    assert {kind for kind, _ in plan} >= {"mul", "matmul", "conv", "trunc", "and", "bit",
                                          "monomials"}
    out = tmp_path / "all"
    write_stores(plan, world, out, "job-1")
    online = run_parties(program, world, config=base)
    config = SessionConfig(truncation="dealer", provider="OfflineStore", store=str(out))
    for got in run_parties(program, world, config=config):
        for a, b in zip(got, online[0], strict=True):
            np.testing.assert_allclose(a, b, atol=2e-3)
