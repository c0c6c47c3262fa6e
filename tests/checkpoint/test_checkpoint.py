"""Checkpoints: round trips across jobs, and every failure raised on every party alike."""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections import OrderedDict

import numpy as np
import pytest

import crypten_lite as cl
from crypten_lite.checkpoint import CheckpointError, load, party_path, save
from crypten_lite.runtime.testing import run_parties

WORLDS = [2, 3]
UNIT = 2.0**-16


def _catch(fn):
    """Run ``fn(session)`` on every party, returning the exception (or result) per party."""

    def job(session):
        try:
            return fn(session)
        except (CheckpointError, TypeError) as err:
            return err

    return job


def _all_raise(results, kind=CheckpointError):
    assert all(isinstance(r, kind) for r in results), results
    return [str(r) for r in results]


def _reveal_tree(obj):
    """The structure with every MPCTensor revealed (collective, same order on all parties)."""
    if isinstance(obj, cl.MPCTensor):
        return ("mpc", obj.ptype, obj.precision, obj.names, obj.reveal_ring().copy())
    if isinstance(obj, dict):
        return type(obj), [(k, _reveal_tree(v)) for k, v in obj.items()]
    if isinstance(obj, list | tuple):
        return type(obj), [_reveal_tree(v) for v in obj]
    return obj


def _assert_same(a, b):
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.shape == b.shape
        assert b.dtype == a.dtype.newbyteorder("=")  # loaded in native byte order
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, tuple | list):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_same(x, y)
    elif isinstance(a, float) and np.isnan(a):
        assert isinstance(b, float) and np.isnan(b)
    else:
        assert type(a) is type(b) and a == b


def _save_tensor(path, world_size, job_id=None):
    def job(session):
        x = cl.cryptensor(np.arange(6.0).reshape(2, 3) - 2.5, src=0)
        save(x, path, job_id=job_id)
        return x.get_plain_text()

    return run_parties(job, world_size)[0]


# -- round trips ----------------------------------------------------------------------------
@pytest.mark.parametrize("world_size", WORLDS)
def test_tensor_round_trip_same_job_and_later_job(tmp_path, world_size):
    path = str(tmp_path / "x-{rank}.ckpt")

    def first(session):
        x = cl.cryptensor(np.array([[1.5, -2.25], [3.0, 1e6]]), src=session.world_size - 1)
        written = save(x, path, job_id="job-1")
        again = load(path)
        assert isinstance(again, cl.MPCTensor)
        np.testing.assert_array_equal(again.share, x.share)  # this party's own share
        return written, x.get_plain_text(), again.get_plain_text()

    results = run_parties(first, world_size)
    for rank, (written, want, same_job) in enumerate(results):
        assert written == str(tmp_path / f"x-{rank}.ckpt")
        np.testing.assert_array_equal(same_job, want)

    later = run_parties(lambda s: load(path).get_plain_text(), world_size)
    for got in later:
        np.testing.assert_array_equal(got, results[0][1])


def _nested(session):
    x = cl.cryptensor(np.linspace(-3, 3, 12).reshape(3, 4), src=0)
    return {
        "public": np.arange(6, dtype=np.int32).reshape(2, 3),
        "dtypes": [
            np.array([True, False]),
            np.array([1, 2], dtype=np.uint8),
            np.array([0.5, -1.5], dtype=np.float16),
            np.array([1 + 2j, -3j]),
            np.array([1.0, 2.0], dtype=">f8"),
            np.zeros((0, 3), dtype=np.float32),
            np.array(7.0),
        ],
        "scalars": (1, 2**70, -3.25, float("nan"), True, None, "naïve \udc80", np.float32(1.5)),
        "tensors": OrderedDict(
            x=x,
            p0=cl.cryptensor(np.array([3, -4, 5]), src=0, precision=0),
            binary=x.to(cl.mpc.binary),
            named=cl.cryptensor(np.ones((2, 3)), src=0, names=("batch", None)),
            scalar=cl.cryptensor(np.array(2.5), src=0),
        ),
        "empty": {"l": [], "t": (), "d": {}},
    }


@pytest.mark.parametrize("world_size", WORLDS)
def test_nested_structure_round_trip_in_later_job(tmp_path, world_size):
    path = str(tmp_path / "state")

    def first(session):
        obj = _nested(session)
        save(obj, path)
        return _reveal_tree(obj)

    want = run_parties(first, world_size)[0]
    assert sorted(os.listdir(tmp_path)) == [f"state.party{r}" for r in range(world_size)]

    def second(session):
        obj = load(path)
        assert type(obj) is dict and type(obj["tensors"]) is OrderedDict
        assert obj["dtypes"][4].dtype == np.float64 and obj["dtypes"][4].dtype.isnative
        assert type(obj["scalars"][7]) is np.float32
        return _reveal_tree(obj)

    for got in run_parties(second, world_size):
        _assert_same_tree(want, got)


def _assert_same_tree(want, got):
    if isinstance(want, tuple) and want and want[0] == "mpc":
        assert got[:4] == want[:4]
        np.testing.assert_array_equal(got[4], want[4])
    elif isinstance(want, tuple) and len(want) == 2 and isinstance(want[0], type):
        assert got[0] is want[0] and len(got[1]) == len(want[1])
        for w, g in zip(want[1], got[1], strict=True):
            if want[0] in (dict, OrderedDict):
                assert w[0] == g[0]
                _assert_same_tree(w[1], g[1])
            else:
                _assert_same_tree(w, g)
    else:
        _assert_same(want, got)


@pytest.mark.parametrize("world_size", WORLDS)
def test_encrypted_model_state_dict_round_trip_and_serve(tmp_path, world_size):
    path = str(tmp_path / "model-{rank}.ckpt")
    data = np.random.default_rng(3).normal(size=(5, 4))

    def make():
        return cl.nn.Sequential(cl.nn.Linear(4, 3), cl.nn.ReLU(), cl.nn.Linear(3, 2))

    def train(session):
        model = make().encrypt(src=0)
        save(model, path, job_id="train")
        out = model(cl.cryptensor(data, src=1)).get_plain_text()
        return {k: v.get_plain_text() for k, v in model.state_dict().items()}, out

    weights, want_out = run_parties(train, world_size)[0]

    def serve(session):
        state = load(path)
        assert type(state) is OrderedDict
        assert list(state) == ["0.weight", "0.bias", "2.weight", "2.bias"]
        model = make().encrypt(src=0)  # same architecture, other weights ...
        for module_name, module in model.named_modules():
            for name in list(module._parameters):
                module._parameters[name] = state[f"{module_name}.{name}"]  # ... replaced
        out = model(cl.cryptensor(data, src=1)).get_plain_text()
        return {k: v.get_plain_text() for k, v in state.items()}, out

    for got, out in run_parties(serve, world_size):
        assert list(got) == list(weights)
        for key in weights:
            np.testing.assert_array_equal(got[key], weights[key])
        np.testing.assert_allclose(out, want_out, rtol=0, atol=8 * UNIT)  # truncation noise


def test_autograd_like_variables_are_saved_as_their_data(tmp_path):
    path = str(tmp_path / "v")

    class Variable:
        def __init__(self, data):
            self.data = data
            self.requires_grad = True

    def job(session):
        x = cl.cryptensor(np.array([1.0, -2.0]), src=0)
        save({"w": Variable(x), "b": Variable(np.ones(2))}, path)
        got = load(path)
        return got["w"].get_plain_text(), got["b"]

    w, b = run_parties(job, 2)[0]
    np.testing.assert_array_equal(w, [1.0, -2.0])
    np.testing.assert_array_equal(b, np.ones(2))


@pytest.mark.parametrize("world_size", WORLDS)
def test_file_mode_is_0600_and_no_temporary_left(tmp_path, world_size):
    path = str(tmp_path / "m")
    _save_tensor(path, world_size)
    for rank in range(world_size):
        assert os.stat(party_path(path, rank)).st_mode & 0o777 == 0o600
    assert len(os.listdir(tmp_path)) == world_size


def test_party_path():
    assert party_path("a/b-{rank}.ck", 2) == "a/b-2.ck"
    assert party_path("a/b.ck", 1) == "a/b.ck.party1"


def test_file_starts_with_magic_and_header_binds_metadata(tmp_path):
    path = str(tmp_path / "h")
    _save_tensor(path, 2, job_id="job-42")
    headers = []
    for rank in range(2):
        data = open(party_path(path, rank), "rb").read()
        assert data[:8] == b"\x89CLCKPT\n"
        _, version, _, hlen, plen = struct.unpack_from("<8sIIQQ", data)
        assert version == 1 and len(data) == 32 + hlen + plen + 32
        assert hashlib.sha256(data[:-32]).digest() == data[-32:]
        headers.append(json.loads(data[32 : 32 + hlen]))
    assert [h["rank"] for h in headers] == [0, 1]
    assert headers[0]["save_id"] == headers[1]["save_id"]
    assert headers[0]["job_id"] == "job-42" and headers[0]["world_size"] == 2
    assert headers[0]["entries"][0]["precision"] == 16
    assert headers[0]["entries"][0]["shape"] == [2, 3]


# -- load failures: raised on every party --------------------------------------------------
@pytest.mark.parametrize("world_size", WORLDS)
def test_swapped_party_files_raise_on_every_party(tmp_path, world_size):
    path = str(tmp_path / "s")
    _save_tensor(path, world_size)
    a, b = party_path(path, 0), party_path(path, 1)
    os.rename(a, a + ".x")
    os.rename(b, a)
    os.rename(a + ".x", b)
    results = run_parties(_catch(lambda s: load(path)), world_size)
    for message in _all_raise(results):
        assert "file of party 1 loaded by party 0" in message
        assert "file of party 0 loaded by party 1" in message
    assert results[2 if world_size == 3 else 0].faults == {0: "WRONG_RANK", 1: "WRONG_RANK"}


def test_world_size_mismatch_raises_on_every_party(tmp_path):
    path = str(tmp_path / "w")
    _save_tensor(path, 3)
    for message in _all_raise(run_parties(_catch(lambda s: load(path)), 2)):
        assert "written by a job of 3 parties, this job has 2" in message
    _save_tensor(str(tmp_path / "w2"), 2)
    results = run_parties(_catch(lambda s: load(str(tmp_path / "w2"))), 3)
    for message in _all_raise(results):
        assert "party 2: file missing" in message
    assert set(results[0].faults) == {0, 1, 2}


@pytest.mark.parametrize("world_size", WORLDS)
def test_flipped_byte_is_corruption_on_every_party(tmp_path, world_size):
    path = str(tmp_path / "c")
    _save_tensor(path, world_size)
    victim = party_path(path, world_size - 1)
    data = bytearray(open(victim, "rb").read())
    for position in (40, len(data) - 50, len(data) - 1):  # header, payload, digest
        flipped = bytearray(data)
        flipped[position] ^= 0x01
        open(victim, "wb").write(bytes(flipped))
        results = run_parties(_catch(lambda s: load(path)), world_size)
        for message in _all_raise(results):
            assert f"party {world_size - 1}: file corrupted" in message
        assert results[0].faults == {world_size - 1: "CORRUPTED"}


@pytest.mark.parametrize("world_size", WORLDS)
def test_truncated_file_raises_on_every_party(tmp_path, world_size):
    path = str(tmp_path / "t")
    _save_tensor(path, world_size)
    victim = party_path(path, 0)
    data = open(victim, "rb").read()
    for length in (len(data) - 1, len(data) // 2, 20, 3):
        open(victim, "wb").write(data[:length])
        for message in _all_raise(run_parties(_catch(lambda s: load(path)), world_size)):
            assert "party 0: file truncated" in message


def test_not_a_checkpoint_unsupported_version_and_missing_file(tmp_path):
    path = str(tmp_path / "n")
    _save_tensor(path, 2)
    victim = party_path(path, 1)
    data = open(victim, "rb").read()
    open(victim, "wb").write(b"PK\x03\x04" + data[4:])
    for message in _all_raise(run_parties(_catch(lambda s: load(path)), 2)):
        assert "party 1: not a crypten_lite checkpoint file (bad magic bytes)" in message
    open(victim, "wb").write(data[:8] + struct.pack("<I", 7) + data[12:])
    for message in _all_raise(run_parties(_catch(lambda s: load(path)), 2)):
        assert "party 1: unsupported checkpoint format version 7" in message
    os.remove(victim)
    for message in _all_raise(run_parties(_catch(lambda s: load(path)), 2)):
        assert "party 1: file missing" in message
    os.mkdir(victim)
    for message in _all_raise(run_parties(_catch(lambda s: load(path)), 2)):
        assert "party 1: file missing, unreadable or not a regular file" in message


def _rewrite_header(file, edit):
    """Apply ``edit`` to the header JSON and write a file with a correct digest."""
    data = open(file, "rb").read()
    magic, version, reserved, hlen, plen = struct.unpack_from("<8sIIQQ", data)
    header = json.loads(data[32 : 32 + hlen])
    edit(header)
    raw = json.dumps(header).encode()
    body = struct.pack("<8sIIQQ", magic, version, reserved, len(raw), plen)
    body += raw + data[32 + hlen : 32 + hlen + plen]
    open(file, "wb").write(body + hashlib.sha256(body).digest())


@pytest.mark.parametrize(
    "edit",
    [
        lambda h: h["entries"][0].update(shape=[3, 3]),
        lambda h: h["entries"][0].update(dtype="|O"),
        lambda h: h["entries"][0].update(ptype="other"),
        lambda h: h["entries"][0].update(precision=99),
        lambda h: h["entries"][0].update(names=["a", "a"]),
        lambda h: h.update(tree={"t": "list", "items": [h["tree"], h["tree"]]}),
        lambda h: h.update(tree={"t": "pickle"}),
        lambda h: h.update(save_id="zz"),
        lambda h: h.pop("rank"),
    ],
)
def test_malformed_header_raises_on_every_party(tmp_path, edit):
    path = str(tmp_path / "mh")
    _save_tensor(path, 2)
    _rewrite_header(party_path(path, 0), edit)
    results = run_parties(_catch(lambda s: load(path)), 2)
    for message in _all_raise(results):
        assert "party 0: checkpoint header malformed" in message
    assert results[1].faults == {0: "HEADER_MALFORMED"}


@pytest.mark.parametrize("world_size", WORLDS)
def test_files_of_two_saves_mixed_raise_on_every_party(tmp_path, world_size):
    first, second = str(tmp_path / "a"), str(tmp_path / "b")
    _save_tensor(first, world_size)
    _save_tensor(second, world_size)
    os.replace(party_path(second, 1), party_path(first, 1))
    results = run_parties(_catch(lambda s: load(first)), world_size)
    for message in _all_raise(results):
        assert "files from different saves are mixed" in message
    if world_size == 3:
        assert results[0].faults == {1: "SAVE_ID_MISMATCH"}
    else:
        assert set(results[0].faults) == {0, 1}


# -- save failures ---------------------------------------------------------------------------
@pytest.mark.parametrize("world_size", WORLDS)
def test_symlink_at_target_is_refused_on_every_party(tmp_path, world_size):
    path = str(tmp_path / "sl")
    _save_tensor(path, world_size)
    before = {r: open(party_path(path, r), "rb").read() for r in range(world_size)}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_bytes(b"precious")
    os.remove(party_path(path, 1))
    os.symlink(elsewhere, party_path(path, 1))

    def job(session):
        return save(cl.cryptensor(np.ones(3), src=0), path)

    results = run_parties(_catch(job), world_size)
    for message in _all_raise(results):
        assert "party 1: the target path is a symbolic link (refused)" in message
    assert elsewhere.read_bytes() == b"precious"
    assert os.path.islink(party_path(path, 1))
    for rank in (0, 2)[: world_size - 1]:  # old files kept, no temporary left behind
        assert open(party_path(path, rank), "rb").read() == before[rank]
    assert len(os.listdir(tmp_path)) == world_size + 1


def test_missing_directory_on_one_party_raises_on_every_party(tmp_path):
    (tmp_path / "p0").mkdir()
    path = str(tmp_path / "p{rank}" / "ckpt")

    def job(session):
        return save(cl.cryptensor(np.ones(3), src=0), path)

    for message in _all_raise(run_parties(_catch(job), 2)):
        assert "party 1: the file could not be written" in message
    assert os.listdir(tmp_path / "p0") == []


@pytest.mark.parametrize("world_size", WORLDS)
def test_unsupported_object_is_a_type_error_naming_the_key_before_any_message(tmp_path, world_size):
    def job(session):
        x = cl.cryptensor(np.ones(2), src=0)
        rounds = session.stats.rounds
        try:
            save({"layers": [x, 2, object()]}, str(tmp_path / "u"))
        except TypeError as err:
            return str(err), session.stats.rounds - rounds
        return None

    for message, rounds in run_parties(job, world_size):
        assert "obj['layers'][2]" in message and "object" in message
        assert rounds == 0
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    ("obj", "where"),
    [
        ({1: 2}, "obj: dict key of type int"),
        ({"f": print}, "obj['f']"),
        ([np.array(["a"])], "obj[0]: numpy dtype <U1"),
        ((np.array([object()]),), "obj[0]: numpy dtype object"),
        ({"s": {1, 2}}, "obj['s']: unsupported type set"),
    ],
)
def test_unsupported_values_name_their_path(tmp_path, obj, where):
    def job(session):
        with pytest.raises(TypeError) as info:
            save(obj, str(tmp_path / "u"))
        return str(info.value)

    for message in run_parties(job, 2):
        assert where in message


def test_self_containing_structure_is_refused(tmp_path):
    loop: list[object] = [1]
    loop.append(loop)

    def job(session):
        with pytest.raises(ValueError, match="contains itself"):
            save(loop, str(tmp_path / "loop"))

    run_parties(job, 2)
