"""L7: running jobs — parties as threads (``run_parties``), as local processes over gRPC
(``launch``), one party per machine (``run_party_file``), and the deployment checks."""

from __future__ import annotations

from crypten_lite.config import PROVIDERS, TRUNCATIONS, SessionConfig
from crypten_lite.errors import CryptenLiteError, StoreError
from crypten_lite.providers.store import plan_from_json, plan_to_json
from crypten_lite.runtime.doctor import Finding, diagnose, doctor
from crypten_lite.runtime.launch import LaunchOptions, launch
from crypten_lite.runtime.offline import record_plan, record_script, summary_lines, write_stores
from crypten_lite.runtime.party import launched_clients, run_party, run_party_file
from crypten_lite.runtime.party_config import PartyConfig, load_party_config
from crypten_lite.runtime.testing import PartyFailure, run_parties
from crypten_lite.transport.grpc import write_client_certs, write_job_certs

__all__ = [
    "PROVIDERS",
    "TRUNCATIONS",
    "CryptenLiteError",
    "Finding",
    "LaunchOptions",
    "PartyConfig",
    "PartyFailure",
    "SessionConfig",
    "StoreError",
    "diagnose",
    "doctor",
    "launch",
    "launched_clients",
    "load_party_config",
    "plan_from_json",
    "plan_to_json",
    "record_plan",
    "record_script",
    "run_parties",
    "run_party",
    "run_party_file",
    "summary_lines",
    "write_client_certs",
    "write_job_certs",
    "write_stores",
]
