"""A multi-host deployment on virtual hosts: each rank runs ``crypten-lite-party`` in its own
network namespace with its own address, the way a job runs on N machines.

Topology (all of it inside namespaces this test creates and deletes; nothing touches the
host's network): a ``hub`` namespace holds a bridge; hosts ``h0`` (party 0), ``h1`` (party 1)
and ``h2`` (dealer) each have one veth into that bridge and a private address 10.213.0.x/24.

- a job completes over mutual TLS between the three hosts;
- a host taken down mid-job (its link cut first, so no FIN/RST ever reaches the others, then
  its processes killed and its namespace deleted) makes the other ranks exit naming it.

Needs root and the kernel's network namespaces; skips cleanly otherwise.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PARTY_CLI = "import sys; from launcher.cli import party_main; sys.exit(party_main())"
CERTS_CLI = "import sys; from launcher.cli import main; sys.exit(main())"
SUBNET = "10.213.0"
PORT = 50051
NAMES = ("party-0", "party-1", "dealer")

JOB = """
import sys, time
import numpy as np
import crypten_lite as cl

s = cl.current_session()
x = cl.cryptensor(np.array([1.5, -2.0, 3.25]) if s.rank == 0 else None, src=0)
y = cl.cryptensor(np.array([2.0, 2.0, -1.0]) if s.rank == 1 else None, src=1)
print("result", np.round((x * y).relu().get_plain_text(), 3).tolist(), flush=True)
rounds = int(sys.argv[1])
if rounds:
    print("started", flush=True)
for _ in range(rounds):
    x = x * y  # a Beaver product each time: a triple from the dealer, a round between parties
    time.sleep(0.02)
if rounds:
    print("finished all rounds", flush=True)
"""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20, check=check)


@dataclass
class Hosts:
    prefix: str
    root: Path

    def ns(self, index: int) -> str:
        return f"{self.prefix}-h{index}"

    @property
    def hub(self) -> str:
        return f"{self.prefix}-hub"

    def address(self, index: int) -> str:
        return f"{SUBNET}.{index + 1}"

    def take_down(self, index: int) -> None:
        """Cut the host's link (the peers get no FIN or RST), kill what runs in it, delete it."""
        _ip("-n", self.hub, "link", "del", f"v{index}", check=False)
        pids = _ip("netns", "pids", self.ns(index), check=False).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        _ip("netns", "del", self.ns(index), check=False)


def _skip_unless_namespaces() -> None:
    if sys.platform != "linux":
        pytest.skip("network namespaces need Linux")
    if shutil.which("ip") is None:
        pytest.skip("the `ip` command (iproute2) is not installed")
    if os.geteuid() != 0:
        pytest.skip("creating network namespaces needs root")


def _cleanup(prefix: str, count: int) -> None:
    for name in [f"{prefix}-h{i}" for i in range(count)] + [f"{prefix}-hub"]:
        for pid in _ip("netns", "pids", name, check=False).stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        _ip("netns", "del", name, check=False)


@pytest.fixture
def hosts(tmp_path: Path) -> Iterator[Hosts]:
    _skip_unless_namespaces()
    prefix = f"cl{secrets.token_hex(3)}"
    made = Hosts(prefix, tmp_path)
    try:
        try:
            _ip("netns", "add", made.hub)
        except subprocess.CalledProcessError as err:
            pytest.skip(f"cannot create a network namespace: {err.stderr.strip()}")
        _ip("-n", made.hub, "link", "add", "br0", "type", "bridge")
        _ip("-n", made.hub, "link", "set", "br0", "up")
        for index in range(len(NAMES)):
            ns = made.ns(index)
            _ip("netns", "add", ns)
            veth = ["link", "add", f"v{index}", "type", "veth", "peer", "name", "eth0"]
            _ip("-n", made.hub, *veth, "netns", ns)
            _ip("-n", made.hub, "link", "set", f"v{index}", "master", "br0")
            _ip("-n", made.hub, "link", "set", f"v{index}", "up")
            _ip("-n", ns, "addr", "add", f"{made.address(index)}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("-n", ns, "link", "set", "lo", "up")
    except subprocess.CalledProcessError as err:
        _cleanup(prefix, len(NAMES))
        pytest.skip(f"cannot build the namespace network: {err.stderr.strip()}")
    except BaseException:
        _cleanup(prefix, len(NAMES))
        raise
    try:
        _write_deployment(made)
        yield made
    finally:
        _cleanup(prefix, len(NAMES))


def _write_deployment(hosts: Hosts) -> None:
    table = "\n".join(
        f'{"dealer" if i == 2 else i} = "{hosts.address(i)}:{PORT}"' for i in range(len(NAMES))
    )
    for index, name in enumerate(NAMES):
        text = f"""
            session_id = "netns-{hosts.prefix}"
            rank = {'"dealer"' if index == 2 else index}

            [parties]
            {table}

            [tls]
            ca = "certs/ca.pem"
            cert = "certs/{name}.pem"
            key = "certs/{name}.key"

            [timeouts]
            connect_s = 30
            recv_s = 5
            keepalive_s = 1
        """
        (hosts.root / f"{name}.toml").write_text(
            textwrap.dedent(text).replace("\n            ", "\n")
        )
    subprocess.run(
        [
            sys.executable,
            "-c",
            CERTS_CLI,
            "certs",
            "--config",
            str(hosts.root / "party-0.toml"),
            "--out",
            str(hosts.root / "certs"),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    (hosts.root / "job.py").write_text(JOB)


def _start(hosts: Hosts, rounds: int) -> list[subprocess.Popen[str]]:
    procs = []
    for index, name in enumerate(NAMES):
        script = [] if name == "dealer" else [str(hosts.root / "job.py"), str(rounds)]
        procs.append(
            subprocess.Popen(
                [
                    "ip",
                    "netns",
                    "exec",
                    hosts.ns(index),
                    sys.executable,
                    "-c",
                    PARTY_CLI,
                    "--config",
                    str(hosts.root / f"{name}.toml"),
                    *script,
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,
                cwd=hosts.root,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        )
    return procs


def _stop(procs: list[subprocess.Popen[str]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            proc.communicate(timeout=5)
        except (subprocess.TimeoutExpired, ValueError):
            pass


def test_a_job_runs_across_three_virtual_hosts(hosts):
    start = time.monotonic()
    procs = _start(hosts, rounds=0)
    try:
        outputs = [proc.communicate(timeout=90) for proc in procs]
    finally:
        _stop(procs)
    elapsed = time.monotonic() - start
    for name, proc, (_, err) in zip(NAMES, procs, outputs, strict=True):
        assert proc.returncode == 0, f"{name}: {err}"
    for index in (0, 1):
        assert outputs[index][0].strip() == "result [3.0, 0.0, 0.0]"
    print(f"\nmulti-host job (3 namespaces, mTLS, start-up included): {elapsed:.2f}s")


def test_a_host_taken_down_mid_job_is_named_by_the_others(hosts):
    procs = _start(hosts, rounds=5000)
    try:
        # wait until party 0 is in the middle of its rounds (bounded)
        party0 = procs[0]
        assert party0.stdout is not None
        deadline = time.monotonic() + 60
        seen = ""
        while "started" not in seen and time.monotonic() < deadline:
            line = party0.stdout.readline()
            if not line:
                break
            seen += line
        assert "started" in seen, seen
        time.sleep(0.5)
        down = time.monotonic()
        hosts.take_down(1)  # party 1's host vanishes
        survivors = {0: procs[0], 2: procs[2]}
        results = {}
        for index, proc in survivors.items():
            out, err = proc.communicate(timeout=60)
            results[index] = (proc.returncode, time.monotonic() - down, out, err)
    finally:
        _stop(procs)
    for index, (code, _, out, err) in results.items():
        assert code == 1, f"{NAMES[index]} exited {code}: {err}"
        assert "finished all rounds" not in out
        assert any(
            f"crypten-lite: {'party 0' if index == 0 else 'dealer (rank 2)'} failed" in line
            and "party 1" in line
            for line in err.splitlines()
        ), f"{NAMES[index]} did not name party 1:\n{err}"
    slowest = max(elapsed for _, elapsed, _, _ in results.values())
    assert slowest < 30, f"took {slowest:.1f}s to notice the lost host"
    detail = ", ".join(f"{NAMES[i]} {r[1]:.2f}s" for i, r in results.items())
    print(f"\nlost host detected and named: {detail}")
    for index, (_, _, _, err) in results.items():
        print(next(line for line in err.splitlines() if "failed" in line))
