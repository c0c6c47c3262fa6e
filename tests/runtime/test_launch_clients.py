"""The launcher with edge-client processes: ``--clients 3`` starts three processes of the
same script with ``$CRYPTEN_LITE_CLIENT`` (no session), the servers install an edge handler
on their communicator, clients reach every party over mutual TLS with their own certificate;
a failing client is only a warning, and clients left running when the ranks finish are
killed."""

from __future__ import annotations

import io
import os
import signal
import textwrap
import time
from pathlib import Path

import pytest

from crypten_lite.errors import LaunchError
from crypten_lite.runtime import LaunchOptions, launch

SCRIPT = """
import sys, threading, time
import numpy as np
from crypten_lite.client import ClientConfig, EdgeClient

config = ClientConfig.from_environment()
if config is None:  # a server: a party rank with a session
    import crypten_lite as cl
    from crypten_lite.runtime import launched_clients
    from crypten_lite.edge.messages import QuantSpec, RoundInfo, RoundState

    session = cl.current_session()
    assert launched_clients() == 3
    done = threading.Event()
    seen = []

    asked = set()

    def check():  # server 0 gets 3 uploads; server 1 gets 2, but client-2 must reach it
        if len(seen) == 3 or (session.rank == 1 and len(seen) == 2 and "client-2" in asked):
            done.set()

    class Handler:
        def round_info(self, client_id):
            asked.add(client_id)
            check()
            return RoundInfo("job", 1, RoundState.OPEN, 4, 32, QuantSpec("int16", 1.0),
                             session.world_size, session.rank, 1)

        def submit(self, client_id, share):
            seen.append((client_id, share.seed is None))
            check()

        def infer(self, client_id, query):
            raise NotImplementedError

    session.comm.set_edge_handler(Handler())
    assert done.wait(60), seen
    print("rank", session.rank, "got", sorted(seen), flush=True)
else:  # a client process: no session
    import crypten_lite as cl
    from crypten_lite.errors import SessionError
    try:
        cl.current_session()
        raise SystemExit("a client process must not have a session")
    except SessionError:
        pass
    client = EdgeClient.connect(config)
    info = client.wait_for_round(after=0, timeout=30)
    if config.client_id == "client-2":  # uploads to server 0 only, then fails
        client.submit_update(np.zeros(info.num_elements), info, servers=[0])
        print("client-2 drops out", flush=True)
        sys.exit(3)
    report = client.submit_update(np.zeros(info.num_elements), info)
    print(config.client_id, "uploaded", report.total_bytes, "bytes", flush=True)
    if config.client_id == "client-1":
        time.sleep(120)  # left running: the launcher must kill it
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


def test_parties_serve_three_client_processes(tmp_path):
    script = tmp_path / "fl_job.py"
    script.write_text(textwrap.dedent(SCRIPT))
    out, err = io.StringIO(), io.StringIO()
    started = time.monotonic()
    try:
        code = launch(
            script,
            [],
            LaunchOptions(world_size=2, clients=3, timeout_s=20),
            stdout=out,
            stderr=err,
        )
    finally:
        leftovers = _processes_mentioning(str(tmp_path))
        for pid in leftovers:
            os.kill(pid, signal.SIGKILL)
    stdout, stderr = out.getvalue(), err.getvalue()
    assert code == 0, stdout + stderr
    assert not leftovers
    assert time.monotonic() - started < 60
    lines = stdout.splitlines()
    # server 0 received a seed from each client (client-2 reached only it), server 1 (the
    # last) the vector
    assert "[0] rank 0 got [('client-0', False), ('client-1', False), ('client-2', False)]" in lines
    assert "[1] rank 1 got [('client-0', True), ('client-1', True)]" in lines
    # 4 int16 values in a 32-bit ring: a 58-byte seed request + a 42-byte vector request
    assert "[c0] client-0 uploaded 100 bytes" in lines
    assert "[c1] client-1 uploaded 100 bytes" in lines
    assert "[c2] client-2 drops out" in lines
    assert "warning: client-2 failed (exit code 3)" in stderr
    assert "stopping 1 client(s) still running" in stderr
    assert "failed" not in stderr.replace("client-2 failed", "")


def test_clients_need_mutual_tls():
    with pytest.raises(LaunchError, match="mutual TLS"):
        LaunchOptions(world_size=2, clients=1, insecure_plaintext=True)
    with pytest.raises(LaunchError, match="--clients"):
        LaunchOptions(world_size=2, clients=-1)


def test_the_console_entry_point_takes_clients():
    import argparse

    from launcher.cli import _launch_parser

    args = _launch_parser(argparse.ArgumentParser()).parse_args(
        ["-n", "2", "--clients", "10", "job.py", "--rounds", "3"]
    )
    assert (args.parties, args.clients, args.script, args.args) == (
        2,
        10,
        "job.py",
        ["--rounds", "3"],
    )
