"""Command line: ``python -m simulators wattcarbon|wattics [options]``."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from typing import Any

from .core import SimApp, SimServer


def _share(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--host", default="127.0.0.1")
    common.add_argument("--port", type=int, default=None, help="0 picks a free port")
    common.add_argument("--accounts", metavar="FILE.json", help="extra accounts (see docs)")
    common.add_argument("--latency-ms", type=float, default=0, help="added to every answer")
    common.add_argument("--fail-500", type=_share, default=0.0, metavar="SHARE")
    common.add_argument("--fail-503", type=_share, default=0.0, metavar="SHARE")
    common.add_argument("--drop", type=_share, default=0.0, metavar="SHARE",
                        help="share of requests answered by closing the connection")  # fmt: skip
    common.add_argument("--seed", type=int, default=0, help="seed of the fault dice")
    common.add_argument("--state-file", metavar="FILE", help="load at start, save on change")
    common.add_argument("--verbose", action="store_true", help="log every request to stderr")

    parser = argparse.ArgumentParser(prog="python -m simulators", description=__doc__)
    sub = parser.add_subparsers(dest="kind", required=True)
    wc = sub.add_parser("wattcarbon", parents=[common], help="WattCarbon API simulator")
    wc.add_argument("--token-ttl", type=float, default=None, metavar="SECONDS")
    wt = sub.add_parser("wattics", parents=[common], help="Wattics push API simulator")
    wt.add_argument("--streams", default="", help="extra data stream ids (comma separated)")
    return parser


def build_app(args: argparse.Namespace) -> SimApp:
    accounts: dict[str, Any] = {}
    if args.accounts:
        with open(args.accounts, encoding="utf-8") as fh:
            accounts = json.load(fh)
    common = dict(
        latency_ms=args.latency_ms,
        fail_500=args.fail_500,
        fail_503=args.fail_503,
        drop=args.drop,
        seed=args.seed,
        state_file=args.state_file,
        verbose=args.verbose,
    )
    if args.kind == "wattcarbon":
        from .wattcarbon import DEFAULT_TOKEN_TTL, WattCarbonApp

        ttl = args.token_ttl if args.token_ttl is not None else DEFAULT_TOKEN_TTL
        return WattCarbonApp(accounts=accounts.get("wattcarbon", []), token_ttl=ttl, **common)
    from .wattics import WatticsApp

    streams = [s.strip() for s in args.streams.split(",") if s.strip()]
    return WatticsApp(accounts=accounts.get("wattics", []), streams=streams, **common)


DEFAULT_PORTS = {"wattcarbon": 8101, "wattics": 8102}


def _stop(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    app = build_app(args)
    port = DEFAULT_PORTS[args.kind] if args.port is None else args.port
    try:
        server = SimServer((args.host, port), app)
    except OSError as exc:
        print(f"{args.kind} simulator cannot listen on {args.host}:{port}: {exc}", file=sys.stderr)
        return 1
    host, real_port = server.server_address[:2]
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    app.start_persister()
    display_host = f"[{host}]" if ":" in host else host
    print(f"{args.kind} simulator listening on http://{display_host}:{real_port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        app.flush_state_file()
    return 0


if __name__ == "__main__":
    sys.exit(main())
