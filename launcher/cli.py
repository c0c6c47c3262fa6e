"""Console entry points (argument parsing only; the work is in :mod:`crypten_lite.runtime`).

- ``crypten-lite-launch -n N [--clients M] script.py [args...]``: N parties + dealer (and M
  edge clients) as local processes.
- ``crypten-lite-party --config party.toml script.py [args...]``: one rank of a real job.
- ``crypten-lite certs ...``: a CA and per-rank certificates; ``crypten-lite doctor ...``:
  check a party's deployment; ``crypten-lite launch|party ...``: the two commands above.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

from crypten_lite.runtime import (
    PROVIDERS,
    TRUNCATIONS,
    CryptenLiteError,
    LaunchOptions,
    SessionConfig,
    StoreError,
    doctor,
    launch,
    load_party_config,
    plan_from_json,
    plan_to_json,
    record_script,
    run_party_file,
    summary_lines,
    write_client_certs,
    write_job_certs,
    write_stores,
)

__all__ = ["launch_main", "main", "party_main"]


def _launch_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("-n", "--parties", type=int, required=True, help="number of parties")
    parser.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        help="seconds to wait for one message / a lost peer (default 30)",
    )
    parser.add_argument(
        "--connect-timeout",
        type=float,
        default=30.0,
        help="seconds for every rank to come up (default 30)",
    )
    parser.add_argument(
        "--clients",
        type=int,
        default=0,
        help="also start this many edge-client processes running the script (default 0)",
    )
    parser.add_argument(
        "--blas-threads",
        type=int,
        default=None,
        help="BLAS threads per process (default: this machine's cores shared among the ranks)",
    )
    parser.add_argument("--provider", choices=PROVIDERS, default="TrustedDealer")
    parser.add_argument(
        "--insecure-dealer",
        action="store_true",
        help="allow --provider InsecureLocalDealer: NO security, every party can rebuild "
        "every triple (tests and demos only)",
    )
    parser.add_argument("--precision", type=int, default=16, help="fixed-point bits")
    parser.add_argument("--truncation", choices=TRUNCATIONS, default="auto")
    parser.add_argument(
        "--store",
        type=Path,
        default=None,
        help="serve correlated randomness from the offline stores in this directory "
        "(`crypten-lite offline generate`): no dealer process, each store read once",
    )
    parser.add_argument("--store-job", default=None, help="the job id the stores must carry")
    parser.add_argument(
        "--insecure-plaintext",
        action="store_true",
        help="no TLS: traffic in the clear, peers unauthenticated (debug only)",
    )
    parser.add_argument("script", help="the script every party runs")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the script")
    return parser


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _run_launch(args: argparse.Namespace) -> int:
    options = LaunchOptions(
        world_size=args.parties,
        timeout_s=args.timeout,
        connect_timeout_s=args.connect_timeout,
        insecure_plaintext=args.insecure_plaintext,
        clients=args.clients,
        blas_threads=args.blas_threads,
        insecure_dealer=args.insecure_dealer,
        session=SessionConfig(
            precision=args.precision,
            provider="OfflineStore" if args.store is not None else args.provider,
            truncation=args.truncation,
            store=None if args.store is None else str(args.store.resolve()),
            store_job=args.store_job,
        ),
    )
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        return launch(args.script, args.args, options)
    except KeyboardInterrupt:
        print("crypten-lite-launch: interrupted; every rank was stopped", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


def _party_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--config", required=True, type=Path, help="this rank's party.toml")
    parser.add_argument("script", nargs="?", help="the script (parties; the dealer needs none)")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the script")
    return parser


def _run_party(args: argparse.Namespace) -> int:
    return run_party_file(args.config, args.script, args.args)


def _certs_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--out", required=True, type=Path, help="directory to write into")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("-n", "--parties", type=int, help="parties, all on this machine")
    group.add_argument(
        "--config",
        type=Path,
        help="any rank's party.toml: certificates name the hosts in [parties]",
    )
    parser.add_argument("--days", type=int, default=365, help="validity (default 365)")
    parser.add_argument("--ca-cert", type=Path, help="reuse this CA (rotate leaf certificates)")
    parser.add_argument("--ca-key", type=Path, help="the reused CA's private key")
    parser.add_argument(
        "--clients",
        type=int,
        default=0,
        help="also issue this many edge-client certificates client-0.. (default 0)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace existing regular files (symbolic links are always refused)",
    )
    return parser


def _run_certs(args: argparse.Namespace) -> int:
    ca = None
    if (args.ca_cert is None) != (args.ca_key is None):
        raise CryptenLiteError("--ca-cert and --ca-key go together")
    if args.ca_cert is not None:
        ca = (args.ca_cert.read_bytes(), args.ca_key.read_bytes())
    if args.config is not None:
        config = load_party_config(args.config)
        world, hosts = config.world_size, config.hosts()
    else:
        world, hosts = args.parties, None
    written = write_job_certs(args.out, world, hosts, days=args.days, ca=ca, force=args.force)
    for paths in written.values():
        print(f"wrote {paths.cert} and {paths.key}")
    if args.clients:
        issued = write_client_certs(args.out, args.clients, ca=ca, days=args.days, force=args.force)
        for paths in issued.values():
            print(f"wrote {paths.cert} and {paths.key} (edge client)")
    ca_key = "" if ca else f", key: {args.out / 'ca.key'}"
    print(f"CA certificate: {args.out / 'ca.pem'}{ca_key}")
    print("Give each rank only its own .key file (plus ca.pem); keep ca.key offline.")
    return 0


def _doctor_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--config", required=True, type=Path, help="this rank's party.toml")
    parser.add_argument("--timeout", type=float, default=3.0, help="per-peer probe timeout")
    return parser


def _run_doctor(args: argparse.Namespace) -> int:
    return doctor(args.config, sys.stdout, args.timeout)


def _offline_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    actions = parser.add_subparsers(dest="action", required=True)
    record = actions.add_parser("record", help="dry-run a script and write its plan (JSON)")
    record.add_argument("-n", "--parties", type=int, required=True, help="number of parties")
    record.add_argument("--plan", required=True, type=Path, help="plan file to write")
    record.add_argument("--precision", type=int, default=16, help="as the job will use")
    record.add_argument("--truncation", choices=TRUNCATIONS, default="auto",
                        help="as the job will use (it decides which requests are made)")
    record.add_argument("script", help="the script the parties will run")
    record.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the script")
    generate = actions.add_parser("generate", help="make every party's store from a plan")
    generate.add_argument("--plan", required=True, type=Path, help="plan file (from record)")
    generate.add_argument("--out", required=True, type=Path, help="private directory (0700)")
    generate.add_argument("--job-id", required=True, help="the job the stores are bound to")
    return parser


def _run_offline(args: argparse.Namespace) -> int:
    if args.action == "record":
        if args.plan.exists():
            raise StoreError(f"refusing to overwrite {args.plan}")
        config = SessionConfig(precision=args.precision, truncation=args.truncation)
        plan = record_script(args.script, args.parties, args.args, config=config)
        args.plan.write_text(plan_to_json(plan, args.parties))
        print(f"recorded {len(plan)} requests of {args.parties} parties into {args.plan}")
        return 0
    try:
        text = args.plan.read_text()
    except OSError as err:
        raise StoreError(f"cannot read the plan {args.plan}: {err.strerror}") from err
    plan, world = plan_from_json(text)
    for line in summary_lines(write_stores(plan, world, args.out, args.job_id)):
        print(line)
    return 0


def _guarded(run: Callable[[argparse.Namespace], int], args: argparse.Namespace, prog: str) -> int:
    try:
        return run(args)
    except CryptenLiteError as err:
        print(f"{prog}: {err}", file=sys.stderr)
        return 2


def launch_main(argv: Sequence[str] | None = None) -> int:
    """``crypten-lite-launch``."""
    parser = _launch_parser(argparse.ArgumentParser(prog="crypten-lite-launch"))
    return _guarded(_run_launch, parser.parse_args(argv), parser.prog)


def party_main(argv: Sequence[str] | None = None) -> int:
    """``crypten-lite-party``."""
    parser = _party_parser(argparse.ArgumentParser(prog="crypten-lite-party"))
    return _guarded(_run_party, parser.parse_args(argv), parser.prog)


def main(argv: Sequence[str] | None = None) -> int:
    """``crypten-lite {launch,party,certs,doctor,offline}``."""
    parser = argparse.ArgumentParser(
        prog="crypten-lite", description="crypten_lite: secure multi-party computation for ML"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    commands = {
        "launch": (_launch_parser, _run_launch, "run a script on N local parties + dealer"),
        "party": (_party_parser, _run_party, "run one rank from a party.toml"),
        "certs": (_certs_parser, _run_certs, "make a CA and per-rank certificates"),
        "doctor": (_doctor_parser, _run_doctor, "check a party's config, certs and peers"),
        "offline": (_offline_parser, _run_offline, "record a plan, generate offline stores"),
    }
    for name, (build, _, help_text) in commands.items():
        build(sub.add_parser(name, help=help_text))
    args = parser.parse_args(argv)
    return _guarded(commands[args.command][1], args, f"crypten-lite {args.command}")


if __name__ == "__main__":
    raise SystemExit(main())
