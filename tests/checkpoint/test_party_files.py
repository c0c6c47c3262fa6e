"""save_from_party / load_from_party: one party's plaintext numpy file, shared on load and
revealed to that party only on save; errors raise alike on every party."""

from __future__ import annotations

import os
import stat
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

import crypten_lite as cl
from crypten_lite.checkpoint import CheckpointError
from crypten_lite.runtime.testing import PartyFailure, run_parties

RNG = np.random.default_rng(7)
X = RNG.normal(size=(3, 4))
W = RNG.normal(size=(2, 4))
B = RNG.normal(size=(2,))


def _errors_everywhere(job, world_size):
    """Run ``job``; every party must raise CheckpointError: return the messages."""

    def wrapped(session):
        try:
            job(session)
        except CheckpointError as err:
            return str(err)
        return None

    messages = run_parties(wrapped, world_size)
    assert all(m is not None for m in messages), messages
    return messages


@pytest.mark.parametrize("world_size", [2, 3])
@pytest.mark.parametrize("src", [0, 1])
def test_array_round_trip_only_src_writes(tmp_path: Path, world_size: int, src: int) -> None:
    target = tmp_path / "x.npy"

    def job(session):
        x = cl.cryptensor(X, src=0)
        written = cl.save_from_party(x * 2.0, target, src=src)
        exists = target.exists()
        y = cl.load_from_party(target, src=src)
        return written, exists, y.get_plain_text()

    results = run_parties(job, world_size)
    for written, exists, value in results:
        assert written == str(target) and exists
        np.testing.assert_allclose(value, 2 * X, atol=1e-3)
    np.testing.assert_allclose(np.load(target, allow_pickle=False), 2 * X, atol=1e-3)
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["x.npy"]  # no temporary left


@pytest.mark.parametrize("world_size", [2, 3])
def test_only_src_reads_a_plain_numpy_file(tmp_path: Path, world_size: int) -> None:
    src = world_size - 1
    mine = tmp_path / "mine.npy"
    np.save(mine, X)
    dicts = tmp_path / "d.npz"
    np.savez(dicts, w=W, b=B, n=np.arange(3))

    def job(session):
        # the other parties pass a path that does not exist on their side: it is ignored
        path = mine if session.rank == src else tmp_path / "absent.npy"
        x = cl.load_from_party(path, src=src)
        d = cl.load_from_party(dicts, src=src)
        assert isinstance(d, OrderedDict) and list(d) == ["w", "b", "n"]
        return x.get_plain_text(), {k: v.get_plain_text() for k, v in d.items()}

    for x, d in run_parties(job, world_size):
        np.testing.assert_allclose(x, X, atol=1e-4)
        np.testing.assert_allclose(d["w"], W, atol=1e-4)
        np.testing.assert_allclose(d["b"], B, atol=1e-4)
        np.testing.assert_allclose(d["n"], np.arange(3))


def test_plaintext_objects_other_parties_pass_none(tmp_path: Path) -> None:
    target = tmp_path / "plain.npz"

    def job(session):
        obj = {"w": W, "k": np.int64(3)} if session.rank == 1 else None
        cl.save_from_party(obj, target, src=1)

    run_parties(job, 3)
    with np.load(target, allow_pickle=False) as data:
        np.testing.assert_array_equal(data["w"], W)
        assert int(data["k"]) == 3


@pytest.mark.parametrize("world_size", [2, 3])
def test_model_round_trip_with_model_class(tmp_path: Path, world_size: int) -> None:
    target = tmp_path / "model.npz"

    def make() -> cl.nn.Module:
        return cl.nn.Linear(4, 2)

    def job(session):
        model = make()
        if session.rank == 0:
            model.load_state_dict({"weight": W, "bias": B})
        model.encrypt(src=0)
        cl.save_from_party(model, target, src=1)  # revealed to party 1 only
        loaded = cl.load_from_party(target, src=1, model_class=make)
        assert loaded.encrypted
        x = cl.cryptensor(X, src=0)
        out = loaded(x).get_plain_text()
        loaded.decrypt()
        return out, loaded.state_dict()

    for out, state in run_parties(job, world_size):
        np.testing.assert_allclose(out, X @ W.T + B, atol=1e-3)
        np.testing.assert_allclose(state["weight"], W, atol=1e-4)
    with np.load(target, allow_pickle=False) as data:
        assert sorted(data.files) == ["bias", "weight"]


def test_dict_of_mpc_tensors_round_trip(tmp_path: Path) -> None:
    target = tmp_path / "state.npz"

    def job(session):
        state = {"w": cl.cryptensor(W, src=0), "plain": np.ones(2), "file": cl.cryptensor(B)}
        cl.save_from_party(state, target, src=0)
        back = cl.load_from_party(target, src=0)
        return {k: v.get_plain_text() for k, v in back.items()}

    for got in run_parties(job, 2):
        assert list(got) == ["w", "plain", "file"]
        np.testing.assert_allclose(got["w"], W, atol=1e-4)
        np.testing.assert_allclose(got["plain"], np.ones(2))
        np.testing.assert_allclose(got["file"], B, atol=1e-4)


@pytest.mark.parametrize("world_size", [2, 3])
def test_missing_file_on_src_raises_everywhere(tmp_path: Path, world_size: int) -> None:
    messages = _errors_everywhere(
        lambda s: cl.load_from_party(tmp_path / "nope.npy", src=1), world_size
    )
    assert all("party 1: file missing" in m for m in messages)
    assert "FileNotFoundError" in messages[1]


@pytest.mark.parametrize("src", [-1, 2, 5, True, "0"])
def test_bad_src_raises_everywhere(tmp_path: Path, src) -> None:
    np.save(tmp_path / "x.npy", X)
    load = _errors_everywhere(lambda s: cl.load_from_party(tmp_path / "x.npy", src=src), 2)
    save = _errors_everywhere(lambda s: cl.save_from_party(X, tmp_path / "y.npy", src=src), 2)
    assert all("src is not a party rank" in m for m in load + save)
    assert not (tmp_path / "y.npy").exists()


def test_parties_passing_different_src_raise_everywhere(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", X)
    messages = _errors_everywhere(
        lambda s: cl.load_from_party(tmp_path / "x.npy", src=s.rank), 2
    )
    assert all("different src" in m for m in messages)


def test_pickle_and_other_files_are_refused(tmp_path: Path) -> None:
    pickled = tmp_path / "obj.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    strings = tmp_path / "s.npz"
    np.savez(strings, s=np.array(["a", "b"]))
    import pickle

    raw = tmp_path / "raw.pkl"
    raw.write_bytes(pickle.dumps({"w": 1}))
    for path, what in [
        (pickled, "not a numpy"),
        (text, "not a numpy"),
        (raw, "not a numpy"),
        (strings, "unsupported"),
    ]:
        messages = _errors_everywhere(lambda s, p=path: cl.load_from_party(p, src=0), 2)
        assert all(what in m for m in messages), (path, messages)


def test_unsupported_objects_refused_on_save(tmp_path: Path) -> None:
    for obj in [["a", "list"], {"s": "text"}, np.array(["x"]), {1: X}, 1 + 2j]:
        messages = _errors_everywhere(
            lambda s, o=obj: cl.save_from_party(o, tmp_path / "bad.npz", src=0), 2
        )
        assert all("unsupported" in m for m in messages)
    assert list(tmp_path.iterdir()) == []


def test_mismatched_encrypted_structure_raises(tmp_path: Path) -> None:
    def job(session):
        x = cl.cryptensor(X, src=0)
        obj = {"x": x} if session.rank == 0 else {"y": x}
        cl.save_from_party(obj, tmp_path / "m.npz", src=0)

    messages = _errors_everywhere(job, 2)
    assert all("different encrypted structures" in m for m in messages)
    assert not (tmp_path / "m.npz").exists()


def test_symlink_target_refused_and_old_file_kept(tmp_path: Path) -> None:
    real = tmp_path / "real.npy"
    np.save(real, B)
    link = tmp_path / "link.npy"
    link.symlink_to(real)
    messages = _errors_everywhere(lambda s: cl.save_from_party(X, link, src=0), 2)
    assert all("symbolic link" in m for m in messages)
    np.testing.assert_array_equal(np.load(real), B)
    directory = tmp_path / "dir.npy"
    directory.mkdir()
    messages = _errors_everywhere(lambda s: cl.save_from_party(X, directory, src=0), 2)
    assert all("not a regular file" in m for m in messages)


def test_model_class_errors_raise_everywhere(tmp_path: Path) -> None:
    np.save(tmp_path / "one.npy", X)
    np.savez(tmp_path / "wrong.npz", weight=np.ones((3, 3)), bias=np.ones(2))

    def make() -> cl.nn.Module:
        return cl.nn.Linear(4, 2)

    for name in ["one.npy", "wrong.npz"]:
        messages = _errors_everywhere(
            lambda s, n=name: cl.load_from_party(tmp_path / n, src=0, model_class=make), 3
        )
        assert all("model could not be built or does not fit" in m for m in messages)
    messages = _errors_everywhere(
        lambda s: cl.load_from_party(tmp_path / "one.npy", src=0, model_class=lambda: 3), 2
    )
    assert all("model could not be built" in m for m in messages)


def test_run_multiprocess_decorator() -> None:
    @cl.run_multiprocess(world_size=3)
    def job(scale: float, *, offset: float = 0.0):
        session = cl.current_session()
        x = cl.cryptensor(np.arange(3.0) * scale + offset, src=2)
        return session.rank, x.sum().get_plain_text()

    assert job.__name__ == "job"
    results = job(2.0, offset=1.0)
    assert [r for r, _ in results] == [0, 1, 2]
    for _, total in results:
        np.testing.assert_allclose(total, 9.0, atol=1e-4)

    @cl.run_multiprocess(world_size=2, timeout_s=30)
    def fails():
        raise ValueError("boom")

    with pytest.raises(PartyFailure, match="boom"):
        fails()
    with pytest.raises(ValueError, match="world_size"):
        cl.run_multiprocess(world_size=0)


def test_other_parties_may_pass_no_path_and_empty_dicts_round_trip(tmp_path: Path) -> None:
    target = tmp_path / "empty.npz"

    def job(session):
        cl.save_from_party({}, target, src=0)
        empty = cl.load_from_party(target if session.rank == 0 else None, src=0)
        x = cl.save_from_party(cl.cryptensor(X), tmp_path / "x.npy", src=2)
        loaded = cl.load_from_party(tmp_path / "x.npy" if session.rank == 2 else None, src=2)
        return empty, x, loaded.get_plain_text()

    for empty, _, value in run_parties(job, 3):
        assert empty == OrderedDict()
        np.testing.assert_allclose(value, X, atol=1e-4)
    messages = _errors_everywhere(lambda s: cl.load_from_party(None, src=0), 2)
    assert all("party 0: file missing" in m for m in messages)
