"""The local launcher: real processes on 127.0.0.1 (parties + dealer), mutual TLS with
throwaway certificates, the op suite for 2 and 3 parties, rank-prefixed output, failures,
a party killed mid-protocol, and no orphan processes — even when the launcher is killed."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from crypten_lite.runtime import LaunchOptions, launch

ROOT = Path(__file__).resolve().parents[2]
LAUNCH_CLI = "import sys; from launcher.cli import launch_main; sys.exit(launch_main())"

OPS_SCRIPT = """
import json, sys
import numpy as np
import crypten_lite as cl

s = cl.current_session()
rng = np.random.default_rng(7)
a, c = rng.uniform(-3, 3, (4, 5)), rng.uniform(-3, 3, (4, 5))
b = rng.uniform(-3, 3, (5, 3))
last = s.world_size - 1
x = cl.cryptensor(a if s.rank == 0 else None, src=0)
y = cl.cryptensor(c if s.rank == 1 else None, src=1)
w = cl.cryptensor(b if s.rank == last else None, src=last)
out = {
    "mul": (x * y).get_plain_text(),
    "matmul": (x @ w).get_plain_text(),
    "lt": (x < y).get_plain_text(),
    "relu": x.relu().get_plain_text(),
    "sum_to_0": (x + y).sum().get_plain_text(dst=0),
}
out = {k: None if v is None else np.asarray(v).tolist() for k, v in out.items()}
with open(f"{sys.argv[1]}/out-{s.rank}.json", "w") as f:
    json.dump(out, f)
print("rounds", s.stats.rounds)
"""

KILL_SCRIPT = """
import os, signal, sys, time
import numpy as np
import crypten_lite as cl

s = cl.current_session()
x = cl.cryptensor(np.ones(1000), src=0)
y = cl.cryptensor(np.ones(1000), src=0)
print("started", flush=True)
for i in range(500):
    if i == 3 and s.rank == int(sys.argv[1]):
        os.kill(os.getpid(), signal.SIGKILL)  # crash mid-protocol, no goodbye
    x = x * y  # a Beaver product: one round between the parties, a triple from the dealer
    time.sleep(0.01)
print("finished all rounds")
"""

FAIL_SCRIPT = """
import numpy as np
import crypten_lite as cl

s = cl.current_session()
x = cl.cryptensor(np.ones(3), src=0) * 2.0
if s.rank == 1:
    raise ValueError("party one is unhappy")
x.get_plain_text()
"""

SLEEP_SCRIPT = """
import time
import numpy as np
import crypten_lite as cl

cl.cryptensor(np.ones(3), src=0)
print("ready", flush=True)
time.sleep(120)
"""


def _processes_mentioning(token: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if token.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.fixture
def workdir(tmp_path):
    """A per-test directory; any process still mentioning it afterwards is killed (and the
    test fails, since the launcher must not leave any behind)."""
    yield tmp_path
    leftovers = _processes_mentioning(str(tmp_path))
    for pid in leftovers:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert not leftovers, f"processes left behind: {leftovers}"


def _script(workdir: Path, name: str, text: str) -> Path:
    path = workdir / name
    path.write_text(textwrap.dedent(text))
    return path


def _launch(script: Path, args: list[str], world_size: int, **kwargs) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = launch(
        script, args, LaunchOptions(world_size=world_size, **kwargs), stdout=out, stderr=err
    )
    return code, out.getvalue(), err.getvalue()


def test_the_hello_example_runs_through_the_console_entry_point(workdir):
    proc = subprocess.run(
        [sys.executable, "-c", LAUNCH_CLI, "-n", "2", str(ROOT / "examples/hello_launch.py")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=workdir,
    )
    assert proc.returncode == 0, proc.stderr
    lines = sorted(proc.stdout.splitlines())
    assert lines == [f"[{r}] party {r} of 2: relu(x * y) = [0.5, 0.0, 0.0, 4.0]" for r in range(2)]


@pytest.mark.parametrize("world_size", [2, 3])
def test_the_op_suite_over_grpc_with_mutual_tls(workdir, world_size):
    script = _script(workdir, "ops.py", OPS_SCRIPT)
    code, out, err = _launch(script, [str(workdir)], world_size)
    assert code == 0, err
    assert sorted(line.split()[0] for line in out.splitlines()) == [
        f"[{r}]" for r in range(world_size)
    ]
    rng = np.random.default_rng(7)
    a, c = rng.uniform(-3, 3, (4, 5)), rng.uniform(-3, 3, (4, 5))
    b = rng.uniform(-3, 3, (5, 3))
    expected = {
        "mul": a * c,
        "matmul": a @ b,
        "lt": (a < c).astype(float),
        "relu": np.maximum(a, 0),
    }
    outputs = [json.loads((workdir / f"out-{r}.json").read_text()) for r in range(world_size)]
    for rank, got in enumerate(outputs):
        for name, want in expected.items():
            np.testing.assert_allclose(got[name], want, atol=2e-3, err_msg=f"{name} @ {rank}")
        if rank == 0:
            assert got["sum_to_0"] == pytest.approx(float((a + c).sum()), abs=1e-2)
        else:
            assert got["sum_to_0"] is None


def test_plaintext_mode_needs_the_explicit_flag_and_still_computes(workdir):
    script = _script(workdir, "ops.py", OPS_SCRIPT)
    code, _, err = _launch(script, [str(workdir)], 2, insecure_plaintext=True)
    assert code == 0, err
    assert "INSECURE plaintext transport" in err


def test_a_failing_party_fails_the_launch_and_is_named_by_the_others(workdir):
    script = _script(workdir, "fail.py", FAIL_SCRIPT)
    start = time.monotonic()
    code, _, err = _launch(script, [], 3, timeout_s=10)
    assert code == 1
    assert time.monotonic() - start < 10
    assert "[1] crypten-lite: party 1 failed: ValueError: party one is unhappy" in err
    for other in ("[0]", "[2]", "[dealer]"):
        assert any(
            line.startswith(other) and "lost party 1: it aborted (ValueError)" in line
            for line in err.splitlines()
        ), err
    assert "crypten-lite-launch: party 1 failed (exit code 1)" in err


def _kill_dealer_when_started(workdir: Path, out: io.StringIO) -> None:
    deadline = time.monotonic() + 30
    while out.getvalue().count("started") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in _processes_mentioning(str(workdir)):
        if b'"rank": "dealer"' in Path(f"/proc/{pid}/environ").read_bytes():
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize(("world_size", "victim", "name"), [(3, 1, "party 1"), (2, 2, "dealer")])
def test_killing_a_rank_mid_protocol_stops_every_other_rank(workdir, world_size, victim, name):
    script = _script(workdir, "kill.py", KILL_SCRIPT)
    timeout_s = 10.0
    out, errs = io.StringIO(), io.StringIO()
    killer = threading.Thread(target=_kill_dealer_when_started, args=(workdir, out))
    if victim == world_size:  # the dealer runs no script: kill it from outside
        killer.start()
    start = time.monotonic()
    code = launch(
        script,
        [str(victim)],
        LaunchOptions(world_size, timeout_s=timeout_s),
        stdout=out,
        stderr=errs,
    )
    elapsed = time.monotonic() - start
    out, err = out.getvalue(), errs.getvalue()
    assert code == 1
    assert elapsed < timeout_s, f"took {elapsed:.1f}s"
    assert "finished all rounds" not in out
    labels = [f"[{r}]" for r in range(world_size)] + ["[dealer]"]
    victim_label = "[dealer]" if victim == world_size else f"[{victim}]"
    for label in labels:
        if label == victim_label:
            continue
        assert any(
            line.startswith(label) and f"lost {name}" in line for line in err.splitlines()
        ), f"{label} did not name the lost {name}:\n{err}"
    assert f"crypten-lite-launch: {name} failed (killed by SIGKILL)" in err


def test_killing_the_launcher_leaves_no_orphans(workdir):
    script = _script(workdir, "sleep.py", SLEEP_SCRIPT)
    proc = subprocess.Popen(
        [sys.executable, "-c", LAUNCH_CLI, "-n", "2", str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        ready = 0
        deadline = time.monotonic() + 60
        while ready < 2 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            ready += "ready" in line
        assert ready == 2
        assert len(_processes_mentioning(str(workdir))) == 4  # launcher + 2 parties + dealer
        proc.kill()  # SIGKILL: no chance to clean up
        proc.wait(10)
        deadline = time.monotonic() + 15
        while _processes_mentioning(str(workdir)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _processes_mentioning(str(workdir)) == []
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.stdout.close()


def test_interrupting_the_launcher_stops_every_rank(workdir):
    script = _script(workdir, "sleep.py", SLEEP_SCRIPT)
    proc = subprocess.Popen(
        [sys.executable, "-c", LAUNCH_CLI, "-n", "2", str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        ready = 0
        while ready < 2:
            ready += "ready" in proc.stdout.readline()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 130
        assert "interrupted; every rank was stopped" in proc.stderr.read()
        assert _processes_mentioning(str(workdir)) == []
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.stdout.close()
        proc.stderr.close()


def test_local_ranks_share_the_cores_among_their_blas_threads(monkeypatch):
    from crypten_lite.errors import LaunchError
    from crypten_lite.runtime.launch import _blas_env

    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert _blas_env(LaunchOptions(world_size=3))["OPENBLAS_NUM_THREADS"] == "2"  # 3 + dealer
    assert _blas_env(LaunchOptions(world_size=8))["OMP_NUM_THREADS"] == "1"
    assert _blas_env(LaunchOptions(world_size=2, blas_threads=3))["MKL_NUM_THREADS"] == "3"
    monkeypatch.setenv("OMP_NUM_THREADS", "4")  # the user's setting wins
    assert _blas_env(LaunchOptions(world_size=2)) == {}
    with pytest.raises(LaunchError, match="blas_threads"):
        LaunchOptions(world_size=2, blas_threads=0)


def test_party_processes_tune_glibc_malloc_unless_disabled(monkeypatch):
    import platform

    from crypten_lite.runtime.allocator import TUNING_ENV, tune_allocator

    monkeypatch.setenv(TUNING_ENV, "0")
    assert tune_allocator() is False
    monkeypatch.delenv(TUNING_ENV)
    on_glibc = sys.platform == "linux" and platform.libc_ver()[0] == "glibc"
    assert tune_allocator() is on_glibc


@pytest.mark.parametrize("world_size", [2, 3])
def test_offline_record_generate_and_launch_from_stores_over_grpc(workdir, world_size):
    """`crypten-lite offline record|generate`, then `crypten-lite-launch --store`: no dealer
    process, the parties talk gRPC with mutual TLS, every store is read once."""
    script = _script(
        workdir,
        "offline_job.py",
        """
        import numpy as np
        import crypten_lite as cl
        session = cl.current_session()
        x = cl.cryptensor(np.linspace(-2, 2, 50), src=0)
        y = cl.cryptensor(np.linspace(1, 3, 50), src=1)
        v = ((x * y).relu() + (x < y)).sum().get_plain_text()
        print(f"{session.provider.name} {float(v):.3f}")
        """,
    )
    cli = "import sys; from launcher.cli import main; sys.exit(main())"
    plan, store = workdir / "plan.json", workdir / "store"
    for args in (
        ["offline", "record", "-n", str(world_size), "--plan", str(plan), str(script)],
        ["offline", "generate", "--plan", str(plan), "--out", str(store), "--job-id", "j7"],
    ):
        proc = subprocess.run([sys.executable, "-c", cli, *args], capture_output=True,
                              text=True, timeout=120, cwd=workdir)
        assert proc.returncode == 0, proc.stderr
    a, b = np.linspace(-2, 2, 50), np.linspace(1, 3, 50)
    want = float((np.maximum(a * b, 0) + (a < b)).sum())
    launch_args = ["-n", str(world_size), "--store", str(store), "--store-job", "j7", str(script)]
    proc = subprocess.run([sys.executable, "-c", LAUNCH_CLI, *launch_args], capture_output=True,
                          text=True, timeout=120, cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == world_size and all(" OfflineStore " in f" {ln} " for ln in lines)
    assert all(abs(float(ln.split()[-1]) - want) < 0.05 for ln in lines)
    assert not any(store.iterdir())
    proc = subprocess.run([sys.executable, "-c", LAUNCH_CLI, *launch_args], capture_output=True,
                          text=True, timeout=120, cwd=workdir)
    assert proc.returncode != 0 and "cannot open the offline store" in proc.stderr
