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


def test_each_edge_service_serves_only_its_own_calls():
    """Aggregation and inference are separate handler protocols: neither service stubs the
    other's methods, and a call of the wrong kind gets a refusal that says why."""
    import numpy as np
    import pytest

    from crypten_lite.client import DirectServerLink
    from crypten_lite.edge.messages import (
        AggregationHandler,
        EdgeRequestError,
        InferenceHandler,
        InferenceQuery,
    )
    from crypten_lite.fl import AggregationService
    from crypten_lite.inference.service import InferenceService

    assert not hasattr(AggregationService, "infer")
    assert not hasattr(InferenceService, "round_info") and not hasattr(InferenceService, "submit")

    class Inference:
        def infer(self, client_id, query):
            raise AssertionError("not reached")

    assert isinstance(Inference(), InferenceHandler)
    assert not isinstance(Inference(), AggregationHandler)
    link = DirectServerLink(Inference(), "client-0")
    with pytest.raises(EdgeRequestError, match="round info and uploads are not served"):
        link.round_info()
    query = InferenceQuery(b"q" * 16, "m", (1,), 16, vector=np.zeros(1, np.uint64))
    with pytest.raises(EdgeRequestError, match="inference queries are not served"):
        DirectServerLink(_Aggregation(), "client-0").infer(query)


class _Aggregation:
    def round_info(self, client_id):
        raise AssertionError("not reached")

    def submit(self, client_id, share):
        raise AssertionError("not reached")
