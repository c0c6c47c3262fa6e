"""The launcher and party files keep their promises about the insecure dealer and about keys:

- ``InsecureLocalDealer`` is refused in multi-process jobs unless asked for explicitly
  (``--insecure-dealer`` / ``insecure_dealer = true``); with it every rank warns, and the
  doctor reports it;
- a launched job writes no key anywhere: the CA key exists only inside the launcher while it
  signs, every rank (and edge client) receives only its own key over its control pipe, so no
  launched process can read the CA key and a SIGKILLed launcher leaves no key file behind.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from crypten_lite.config import SessionConfig
from crypten_lite.errors import ConfigError, LaunchError
from crypten_lite.runtime import LaunchOptions, doctor, launch, load_party_config
from tests.runtime.test_launch_party import _free_ports, _write_configs
from tests.runtime.test_launch_party import cli_main as crypten_lite_cli

LAUNCH_CLI = "import sys; from launcher.cli import launch_main; sys.exit(launch_main())"

HELLO = """
import numpy as np
import crypten_lite as cl

s = cl.current_session()
x = cl.cryptensor(np.arange(4.0), src=0)
y = cl.cryptensor(np.ones(4), src=1)
print("product", (x * y).get_plain_text().tolist(), flush=True)
"""

# every process of the job (ranks and edge clients) looks for private keys it could read:
# files under $TMPDIR (where the launcher used to keep its CA), its environment, and every
# file it has open. It may hold its own key in memory, nothing else.
SCAN = """
import os, sys
from pathlib import Path

def scan():
    found = []
    for root, _, files in os.walk(os.environ["TMPDIR"]):
        for name in files:
            path = Path(root) / name
            try:
                if b"PRIVATE KEY" in path.read_bytes():
                    found.append(str(path))
            except OSError:
                pass
    found += [k for k, v in os.environ.items() if "PRIVATE KEY" in v]
    for fd in Path("/proc/self/fd").iterdir():
        target = os.path.realpath(fd)
        if target.startswith("/") and os.path.isfile(target) and "memfd:" not in target:
            try:
                if b"PRIVATE KEY" in Path(target).read_bytes():
                    found.append(target)
            except OSError:
                pass
    return found

from crypten_lite.client import ClientConfig
config = ClientConfig.from_environment()
if config is None:
    import crypten_lite as cl
    s = cl.current_session()
    print("rank", s.rank, "keys found:", scan(), flush=True)
    x = cl.cryptensor([1.0, 2.0], src=0) * cl.cryptensor([3.0, 4.0], src=1)
    print("rank", s.rank, "product", x.get_plain_text().tolist(), flush=True)
    marker = Path(sys.argv[1]) / "client-done"
    for _ in range(600):  # the launcher stops clients soon after the ranks exit
        if marker.exists():
            break
        __import__("time").sleep(0.05)
else:
    print(config.client_id, "keys found:", scan(), flush=True)
    # the client SDK still loads its own identity (memory-only files)
    from crypten_lite.transport.grpc import load_identity
    identity = load_identity(config.certs)
    print(config.client_id, "has its key:", b"PRIVATE KEY" in identity.key_pem, flush=True)
    (Path(sys.argv[1]) / "client-done").write_text("done")
"""

SLEEP = """
import time
import numpy as np
import crypten_lite as cl

cl.cryptensor(np.ones(3), src=0)
print("ready", flush=True)
time.sleep(120)
"""


def _script(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.write_text(textwrap.dedent(text))
    return path


def _key_files(root: Path) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            try:
                if b"PRIVATE KEY" in path.read_bytes():
                    found.append(str(path))
            except OSError:
                continue
    return found


# -- the insecure dealer ------------------------------------------------------------------


def test_launch_refuses_the_insecure_dealer_without_the_flag(tmp_path):
    with pytest.raises(LaunchError, match="--insecure-dealer"):
        LaunchOptions(world_size=2, session=SessionConfig(provider="InsecureLocalDealer"))
    script = _script(tmp_path, "hello.py", HELLO)
    proc = subprocess.run(
        [sys.executable, "-c", LAUNCH_CLI, "-n", "2", "--provider", "InsecureLocalDealer", script],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "--provider InsecureLocalDealer is refused" in proc.stderr
    assert "product" not in proc.stdout  # no rank ever ran


def test_the_insecure_dealer_with_the_flag_runs_and_every_rank_warns(tmp_path):
    script = _script(tmp_path, "hello.py", HELLO)
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            LAUNCH_CLI,
            "-n",
            "3",
            "--provider",
            "InsecureLocalDealer",
            "--insecure-dealer",
            script,
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(proc.stdout.splitlines()) == [
        f"[{r}] product [0.0, 1.0, 2.0, 3.0]" for r in range(3)
    ]
    for rank in range(3):  # every rank (there is no dealer rank) warns on stderr
        assert any(
            line.startswith(f"[{rank}] crypten-lite: WARNING: party {rank} uses the INSECURE")
            for line in proc.stderr.splitlines()
        ), proc.stderr
    assert "[dealer]" not in proc.stdout + proc.stderr


def _insecure_dealer_config(path: Path, opt_in: bool) -> Path:
    text = path.read_text().replace("connect_s = 20", "connect_s = 2")
    text += '\n[protocol]\nprovider = "InsecureLocalDealer"\n'
    if opt_in:
        text = "insecure_dealer = true\n" + text
    out = path.with_name(("optin-" if opt_in else "plain-") + path.name)
    out.write_text(text)
    return out


def test_party_files_refuse_the_insecure_dealer_unless_opted_in_and_doctor_reports_it(tmp_path):
    configs = _write_configs(tmp_path, _free_ports(3))
    assert (
        crypten_lite_cli(["certs", "--config", str(configs[0]), "--out", str(tmp_path / "certs")])
        == 0
    )
    refused = _insecure_dealer_config(configs[1], opt_in=False)
    with pytest.raises(ConfigError, match="insecure_dealer = true"):
        load_party_config(refused)
    out = io.StringIO()
    assert doctor(refused, out, timeout_s=0.5) == 1
    assert "[FAIL] config:" in out.getvalue() and "InsecureLocalDealer" in out.getvalue()

    allowed = _insecure_dealer_config(configs[1], opt_in=True)
    config = load_party_config(allowed)
    assert config.session.provider == "InsecureLocalDealer" and config.insecure_dealer
    out = io.StringIO()
    doctor(allowed, out, timeout_s=0.5)
    assert "[warn] provider: WARNING: party 1 uses the INSECURE InsecureLocalDealer" in (
        out.getvalue()
    )
    # and a party process started from it warns on stderr before anything else
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from launcher.cli import party_main; sys.exit(party_main())",
            "--config",
            str(allowed),
            str(_script(tmp_path, "hello.py", HELLO)),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    # its peers never come up (it gives up after connect_s = 2): the warning comes first
    assert "WARNING: party 1 uses the INSECURE InsecureLocalDealer" in proc.stderr


# -- keys at launch time ------------------------------------------------------------------


def test_no_launched_process_can_read_the_ca_key_and_the_launcher_writes_no_key(
    tmp_path, monkeypatch
):
    import crypten_lite.transport.grpc.tls as tls

    def no_writes(*args, **kwargs):
        raise AssertionError("the launcher wrote a key or certificate file")

    monkeypatch.setattr(tls, "_write", no_writes)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr("tempfile.tempdir", None)
    script = _script(tmp_path, "scan.py", SCAN)
    out, err = io.StringIO(), io.StringIO()
    code = launch(
        script, [str(tmp_path)], LaunchOptions(world_size=2, clients=1), stdout=out, stderr=err
    )
    assert code == 0, err.getvalue()
    lines = out.getvalue().splitlines()
    for who in ("[0] rank 0", "[1] rank 1", "[dealer]", "[c0] client-0"):
        if who == "[dealer]":
            continue  # the dealer runs no script
        assert f"{who} keys found: []" in lines, out.getvalue()
    assert "[c0] client-0 has its key: True" in lines
    assert "[0] rank 0 product [3.0, 8.0]" in lines
    assert _key_files(tmp) == [] and list(tmp.iterdir()) == []


def test_a_sigkilled_launcher_leaves_no_key_file(tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    script = _script(tmp_path, "sleep.py", SLEEP)
    proc = subprocess.Popen(
        [sys.executable, "-c", LAUNCH_CLI, "-n", "2", str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
        env={**os.environ, "TMPDIR": str(tmp)},
    )
    try:
        ready = 0
        deadline = time.monotonic() + 60
        while ready < 2 and time.monotonic() < deadline:
            ready += "ready" in proc.stdout.readline()
        assert ready == 2
        proc.kill()  # SIGKILL: the launcher cleans up nothing
        proc.wait(10)
        deadline = time.monotonic() + 15  # the ranks see the control pipe close and exit
        while _ranks_of(script) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _ranks_of(script) == []
        assert _key_files(tmp) == [], "key files left behind"
        assert list(tmp.iterdir()) == []
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        for pid in _ranks_of(script):
            os.kill(pid, signal.SIGKILL)
        proc.stdout.close()


def _ranks_of(script: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if str(script).encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


# -- crypten-lite certs -------------------------------------------------------------------


def test_certs_refuse_a_planted_symlink_and_make_a_private_directory(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    out = tmp_path / "certs"
    previous = os.umask(0o022)
    try:
        out.mkdir(mode=0o700)
        (out / "party-1.key").symlink_to(victim)  # planted by someone who can write there
        err = io.StringIO()
        code = _certs(["-n", "2", "--out", str(out)], err)
        assert code == 2
        assert "party-1.key: it is a symbolic link" in err.getvalue()
        assert victim.read_text() == "precious\n"  # nothing written through the link
        # --force replaces regular files, never symlinks
        assert _certs(["-n", "2", "--out", str(out), "--force"], io.StringIO()) == 2
        assert victim.read_text() == "precious\n"

        fresh = tmp_path / "fresh" / "certs"
        assert _certs(["-n", "2", "--out", str(fresh)], io.StringIO()) == 0
        assert fresh.stat().st_mode & 0o777 == 0o700  # not the umask's 0755
        for key in fresh.glob("*.key"):
            assert key.stat().st_mode & 0o777 == 0o600
        # an existing file is refused without --force, replaced with it
        err = io.StringIO()
        assert _certs(["-n", "2", "--out", str(fresh)], err) == 2
        assert "refusing to overwrite" in err.getvalue() and "--force" in err.getvalue()
        old = (fresh / "party-0.key").read_bytes()
        assert _certs(["-n", "2", "--out", str(fresh), "--force"], io.StringIO()) == 0
        assert (fresh / "party-0.key").read_bytes() != old

        shared = tmp_path / "shared"
        shared.mkdir()
        shared.chmod(0o777)
        err = io.StringIO()
        assert _certs(["-n", "2", "--out", str(shared)], err) == 2
        assert "group or others can write to it" in err.getvalue()
        assert list(shared.iterdir()) == []
    finally:
        os.umask(previous)


def _certs(args: list[str], err: io.StringIO) -> int:
    from contextlib import redirect_stderr, redirect_stdout

    with redirect_stderr(err), redirect_stdout(io.StringIO()):
        return crypten_lite_cli(["certs", *args])
