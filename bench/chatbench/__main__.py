"""`python -m chatbench [direct|group|idle|storm|chaos|all ...] [flags]`: benchmark send-to-deliver.

Without URLs it starts its own stack as `make dev` does (free ports, a namespace
and database of its own, per-user rate limits out of the way) and stops it at
the end; with `--dev` or `--auth-url/--message-url/--gateway-url` it drives a
running stack and leaves it running (storm then adds two gateways of its own,
which it may SIGKILL). A run with chaos starts its own Redis and RabbitMQ
(private servers on free ports) under its own stack, and refuses a running one.
Each scenario prints a table and one JSON line on stdout (also appended to
.dev/bench/results.jsonl); progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import Any

import httpx

from .chaos import FAULTS, parse_faults
from .population import Population, SetupError, cache_path
from .report import json_line
from .runner import Runner, ScenarioFailed, report_table
from .scenarios import ALL, PRESETS, SCENARIOS, configure
from .stack import BENCH_DIR, StackError, external_stack, start_own_stack

DEV_URLS = {
    "auth_url": "http://127.0.0.1:8001",
    "message_url": "http://127.0.0.1:8002",
    "gateway_url": ["http://127.0.0.1:8101", "http://127.0.0.1:8102"],
}


def _parser() -> argparse.ArgumentParser:
    presets = "; ".join(f"{name}: {config.describe()}" for name, config in PRESETS.items())
    parser = argparse.ArgumentParser(
        prog="python -m chatbench",
        description="Open-loop benchmark of the chat's send-to-deliver path over HTTP and "
        "Socket.IO. Presets: " + presets + ". 'all' runs direct at 50 msg/s for 30 s, then "
        "every preset but chaos.",
    )
    parser.add_argument(
        "scenarios",
        nargs="*",
        default=["all"],
        choices=[*SCENARIOS, "all"],
        metavar="SCENARIO",
        help="direct, group, idle, storm, chaos or all (default: all; chaos is not in all)",
    )
    load = parser.add_argument_group("load (each overrides the preset of every scenario run)")
    load.add_argument("--rate", type=float, help="offered messages/s (direct, group, storm)")
    load.add_argument("--duration", type=float, help="seconds of sending (idle: of holding)")
    load.add_argument("--warmup", type=float, help="seconds left out of latency figures")
    load.add_argument("--users", type=int, help="users (direct, idle, storm)")
    load.add_argument("--devices", type=int, help="devices per user (direct, group)")
    load.add_argument("--convs-per-user", type=int, help="direct conversations per user")
    load.add_argument("--groups", type=int, help="groups (group)")
    load.add_argument("--members", type=int, help="members per group (group)")
    load.add_argument("--connections", type=int, help="idle connections in all (idle)")
    load.add_argument("--clients", type=int, help="connected clients in all (storm)")
    load.add_argument("--kill-after", type=float, help="storm: kill a gateway after s")
    load.add_argument("--reconnect-jitter", type=float, help="storm: reconnect after U(0,s)")
    load.add_argument("--sync-timeout", type=float, help="storm: wait at most s for syncs")
    load.add_argument("--size", type=int, help="characters of text per message")
    load.add_argument("--seed", type=int)
    load.add_argument(
        "--no-drop",
        action="store_true",
        help="idle: keep the connections at the end instead of dropping them all at once",
    )
    load.add_argument("--offline-timeout", type=float, help="idle: wait at most s for offline")
    chaos = parser.add_argument_group("chaos (its own stack on private Redis and RabbitMQ)")
    chaos.add_argument(
        "--faults",
        help="comma-separated, in order (default: all): "
        + "; ".join(f"{k}: {v}" for k, v in FAULTS.items()),
    )
    chaos.add_argument("--fault-lead", type=float, help="steady seconds before the first fault")
    chaos.add_argument("--fault-down", type=float, help="seconds a component stays down")
    chaos.add_argument("--fault-gap", type=float, help="steady seconds after each recovery")
    chaos.add_argument("--recover-timeout", type=float, help="give up on a recovery after s")
    chaos.add_argument(
        "--deliver-within", type=float, help="an acked message is late on a device after s"
    )
    gen = parser.add_argument_group("generator")
    gen.add_argument("--workers", type=int, help="generator processes")
    gen.add_argument("--connect-concurrency", type=int, help="connects in flight per process")
    gen.add_argument("--ack-timeout", type=float)
    gen.add_argument("--drain-timeout", type=float)
    gen.add_argument("--connect-timeout", type=float)
    gen.add_argument(
        "--give-up-after",
        type=float,
        help="stop retrying a refused or unanswered send this many s after it was due",
    )
    gen.add_argument(
        "--answer-within", type=float, help="count send answers slower than this many s"
    )
    gen.add_argument(
        "--sync-spread", type=float, help="answer sync:required within uniform(0, s) s"
    )
    gen.add_argument("--max-lag-ms", type=float, help="flag the generator above this lag p99")
    gen.add_argument(
        "--max-generator-cpu", type=float, help="flag the generator above this CPU%% per process"
    )
    gen.add_argument("--no-uvloop", action="store_true", help="plain asyncio event loops")
    gen.add_argument(
        "--no-fresh-gateways",
        action="store_true",
        help="idle: do not restart the own stack's gateways before measuring RSS",
    )
    stack = parser.add_argument_group("stack (default: start our own, as make dev does)")
    stack.add_argument("--dev", action="store_true", help="drive a running `make dev` stack")
    stack.add_argument("--auth-url")
    stack.add_argument("--message-url")
    stack.add_argument("--gateway-url", action="append", help="repeat for each gateway")
    stack.add_argument("--gateways", type=int, default=2, help="own stack: gateways (2)")
    stack.add_argument(
        "--mongodb-url",
        help="a MongoDB for the own stack (default: MONGODB_URL, else an embedded server; "
        "chaos always runs its own embedded one)",
    )
    stack.add_argument(
        "--db",
        help="own stack: a database that survives the run (users are then cached); "
        "running stack: its MONGODB_DB, which names the user cache (default chat)",
    )
    stack.add_argument(
        "--namespace",
        default=os.environ.get("NAMESPACE", "chat"),
        help="running stack: its NAMESPACE (storm's own gateways join it)",
    )
    stack.add_argument(
        "--service-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the services the bench starts (repeat)",
    )
    stack.add_argument("--no-cache", action="store_true", help="do not reuse cached users")
    out = parser.add_argument_group("output")
    out.add_argument("--quiet", action="store_true", help="no progress line")
    out.add_argument(
        "--log-dir",
        default=str(BENCH_DIR / "logs"),
        help="where the services the bench starts write their logs (a folder per run)",
    )
    out.add_argument(
        "--json-out",
        default=str(BENCH_DIR / "results.jsonl"),
        help="append each JSON line here too ('' for nowhere)",
    )
    return parser


FLAG_NAMES = (
    "rate",
    "duration",
    "warmup",
    "users",
    "devices",
    "convs_per_user",
    "groups",
    "members",
    "connections",
    "clients",
    "kill_after",
    "reconnect_jitter",
    "sync_timeout",
    "size",
    "seed",
    "workers",
    "connect_concurrency",
    "ack_timeout",
    "drain_timeout",
    "connect_timeout",
    "max_lag_ms",
    "max_generator_cpu",
    "give_up_after",
    "answer_within",
    "sync_spread",
    "offline_timeout",
    "faults",
    "fault_lead",
    "fault_down",
    "fault_gap",
    "recover_timeout",
    "deliver_within",
)


def _runs(args: argparse.Namespace) -> list[tuple[str, dict[str, Any]]]:
    runs: list[tuple[str, dict[str, Any]]] = []
    for name in args.scenarios:
        runs.extend(ALL if name == "all" else [(name, {})])
    return runs


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    flags = {name: getattr(args, name) for name in FLAG_NAMES}
    if args.no_fresh_gateways:
        flags["fresh_gateways"] = False
    if args.no_drop:
        flags["drop"] = False
    if args.faults is not None:
        try:
            parse_faults(args.faults)
        except ValueError as exc:
            print(f"bench: --faults: {exc}", file=sys.stderr)
            return 2
    configs = [configure(name, preset, flags) for name, preset in _runs(args)]
    chaos = any(config.scenario == "chaos" for config in configs)
    extra_env = dict(item.split("=", 1) for item in args.service_env if "=" in item)
    if args.dev:
        args.auth_url = args.auth_url or DEV_URLS["auth_url"]
        args.message_url = args.message_url or DEV_URLS["message_url"]
        args.gateway_url = args.gateway_url or DEV_URLS["gateway_url"]
    external = bool(args.auth_url or args.message_url or args.gateway_url)
    # Chaos kills and restarts its database, so it never takes one from the environment.
    mongodb_url = args.mongodb_url or (None if chaos else os.environ.get("MONGODB_URL"))
    if chaos and (external or args.mongodb_url):
        print(
            "bench: chaos restarts Redis, RabbitMQ and the database, so it runs only on a stack "
            "of its own on private servers: drop --dev, the URLs and --mongodb-url",
            file=sys.stderr,
        )
        return 2

    # SIGTERM (make interrupted, a CI timeout) unwinds like Ctrl-C, so the stack is stopped.
    def terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    try:
        if external:
            if not (args.auth_url and args.message_url and args.gateway_url):
                print(
                    "give --auth-url, --message-url and --gateway-url (or --dev)", file=sys.stderr
                )
                return 2
            stack = external_stack(
                auth_url=args.auth_url,
                message_url=args.message_url,
                gateway_urls=args.gateway_url,
                mongodb_url=mongodb_url,
                db=args.db or os.environ.get("MONGODB_DB", "chat"),
                namespace=args.namespace,
            )
        else:
            stack = start_own_stack(
                gateways=args.gateways,
                mongodb_url=mongodb_url,
                db=args.db,
                extra_env=extra_env,
                log_root=Path(args.log_dir),
                log=not args.quiet,
                private=chaos,
            )
    except (StackError, RuntimeError) as exc:
        # RuntimeError: a service that would not start (its log's tail is in the message).
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nbench: interrupted while starting the stack", file=sys.stderr)
        return 130
    cache = None
    if not args.no_cache and (external or args.db):
        cache = cache_path(BENCH_DIR, stack.auth_url, stack.db)
    loop = asyncio.new_event_loop()
    population = Population(stack.auth_url, stack.message_url, cache)
    runner = Runner(
        stack,
        population,
        loop,
        quiet=args.quiet,
        use_uvloop=not args.no_uvloop,
        extra_env=extra_env,
    )
    status = 0
    try:
        for config in configs:
            try:
                report = runner.run(config)
            except (ScenarioFailed, SetupError, httpx.HTTPError, RuntimeError) as exc:
                print(f"bench: {config.label} failed: {exc}", file=sys.stderr)
                status = 1
                continue
            print(report_table(report, config), flush=True)
            line = json_line(report)
            print(line, flush=True)
            if args.json_out:
                path = Path(args.json_out)
                path.parent.mkdir(parents=True, exist_ok=True)
                with path.open("a") as out:
                    out.write(line + "\n")
    except KeyboardInterrupt:
        print("\nbench: interrupted; stopping what it started", file=sys.stderr)
        status = 130
    finally:
        with contextlib.suppress(Exception):
            loop.run_until_complete(population.close())
        loop.close()
        stack.close()
    return status


if __name__ == "__main__":
    sys.exit(main())
