"""``crypten-lite-bench [SUITE ...] [--json PATH] [--reps N] [--quick] [--servers N]``.

``--servers 1`` switches ``fl`` to single-server secure aggregation (SecAgg+,
:mod:`benchmarks.suite_secagg`); the default runs the multi-server suite."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from benchmarks import (
    suite_edge,
    suite_explain,
    suite_fl,
    suite_models,
    suite_offline,
    suite_ops,
    suite_ops_grpc,
    suite_ring,
    suite_secagg,
    suite_train,
    suite_transport,
)
from benchmarks.record import BenchRecord

__all__ = ["SINGLE_SERVER", "SUITES", "format_table", "main"]

SUITES: dict[str, Callable[[int, bool], list[BenchRecord]]] = {
    "ring": suite_ring.run,
    "ops": suite_ops.run,
    "transport": suite_transport.run,
    "ops-grpc": suite_ops_grpc.run,
    "models": suite_models.run,
    "models-grpc": suite_ops_grpc.run_models,
    "fl": suite_fl.run,
    "fl-grpc": suite_fl.run_grpc,
    "train": suite_train.run,
    "train-grpc": suite_train.run_grpc,
    "explain": suite_explain.run,
    "explain-grpc": suite_explain.run_grpc,
    "offline": suite_offline.run,
    "edge": suite_edge.run,
    "edge-grpc": suite_edge.run_grpc,
    "offline-grpc": suite_offline.run_grpc,
}

#: the suites ``--servers 1`` replaces.
SINGLE_SERVER: dict[str, Callable[[int, bool], list[BenchRecord]]] = {
    "fl": suite_secagg.run,
    "fl-grpc": suite_secagg.run_grpc,
}


def _fmt_params(params: dict[str, object]) -> str:
    return " ".join(f"{k}={v}" for k, v in params.items())


def format_table(records: Sequence[BenchRecord]) -> str:
    """A fixed-width table: one line per record."""
    header = (
        f"{'suite':<9} {'name':<14} {'params':<44} {'transport':<14} {'P':>2} "
        f"{'median_s':>10} {'min_s':>10} "
        f"{'rounds':>6} {'bytes/party':>12} {'max_err':>9} {'plain_s':>9}  extra"
    )
    lines = [header, "-" * len(header)]
    for r in records:
        plain = f"{r.plaintext_s:9.4f}" if r.plaintext_s is not None else f"{'-':>9}"
        extra = " ".join(
            f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in r.extra.items()
        )
        lines.append(
            f"{r.suite:<9} {r.name:<14} {_fmt_params(r.params):<44} {r.transport:<14} "
            f"{r.parties:>2} "
            f"{r.wall_s_median:10.4f} {r.wall_s_min:10.4f} {r.rounds:>6} "
            f"{r.bytes_sent_per_party:>12} {r.max_abs_err:9.3g} {plain}  {extra}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="crypten-lite-bench", description=__doc__)
    parser.add_argument("suites", nargs="*", help=f"suites to run (default all: {list(SUITES)})")
    parser.add_argument("--json", type=Path, help="write the records as a JSON list here")
    parser.add_argument("--reps", type=int, default=5, help="timed repetitions per row")
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument(
        "--servers", type=int, default=None, help="1: fl runs single-server SecAgg+"
    )
    args = parser.parse_args(argv)
    unknown = [s for s in args.suites if s not in SUITES]
    if unknown:
        parser.error(f"unknown suite(s) {unknown}; choose from {list(SUITES)}")
    suites = dict(SUITES)
    if args.servers == 1:
        names = args.suites or list(SINGLE_SERVER)
        wrong = [s for s in names if s not in SINGLE_SERVER]
        if wrong:
            parser.error(f"--servers 1 applies to {list(SINGLE_SERVER)} only, not {wrong}")
        suites |= SINGLE_SERVER
        args.suites = names
    elif args.servers is not None and args.servers < 2:
        parser.error(f"--servers must be 1 or at least 2, got {args.servers}")
    records: list[BenchRecord] = []
    for name in args.suites or list(SUITES):
        records.extend(suites[name](args.reps, args.quick))
    print(format_table(records))
    if args.json is not None:
        args.json.write_text(json.dumps([r.to_json() for r in records], indent=2) + "\n")
        print(f"wrote {len(records)} records to {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
