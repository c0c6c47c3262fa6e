"""L7: running jobs (in-process threads now; processes and gRPC with the transport issue)."""

from __future__ import annotations

from crypten_lite.runtime.testing import PartyFailure, run_parties

__all__ = ["PartyFailure", "run_parties"]
