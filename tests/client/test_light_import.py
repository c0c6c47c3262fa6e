"""The edge SDK stays light: importing it loads none of the MPC layers (the package root and
the gRPC transport import lazily), within a module budget."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("sharing", "providers", "protocols", "session", "tensor", "nn", "named",
         "quantization", "fl", "autograd", "optim", "explain", "checkpoint", "runtime")
BUDGET = 45  # crypten_lite modules after `import crypten_lite.client` (123 before)


def _loaded(statement: str) -> list[str]:
    code = (
        f"{statement}\n"
        "import json, sys\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('crypten_lite'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    return list(json.loads(out.stdout.splitlines()[-1]))


def test_importing_the_client_loads_no_mpc_layer():
    mods = _loaded("import crypten_lite.client")
    heavy = [m for m in mods if m.split(".")[1:2] and m.split(".")[1] in HEAVY]
    assert heavy == []
    assert "crypten_lite.transport.grpc.communicator" not in mods
    assert len(mods) <= BUDGET, mods


def test_the_root_still_offers_the_whole_api_on_first_use():
    mods = _loaded(
        "import crypten_lite as cl\n"
        "assert 'cryptensor' in dir(cl) and callable(cl.cryptensor)\n"
        "assert cl.nn.Linear and cl.SessionConfig().precision == 16\n"
        "from crypten_lite import MPCTensor, run_multiprocess"
    )
    assert "crypten_lite.tensor" in mods and "crypten_lite.nn" in mods
    out = subprocess.run([sys.executable, "-c", "import crypten_lite as cl; cl.nothing"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "has no attribute 'nothing'" in out.stderr
