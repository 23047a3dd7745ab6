"""The coordinator: sets a scenario up, runs the generator processes, watches, reports.

The coordinator process does the REST setup (users, conversations), splits the
devices and the send schedule over the generator processes, tells them when to
connect and when to start, samples CPU and memory of every process (psutil)
once a second, prints a progress line, kills a gateway in the storm, runs the
chaos scenario's faults (chaos.Driver, on a thread of its own), drops the idle
connections at once and watches the users go offline, waits (bounded) for the
last deliveries, then collects what each process saw and builds the report.
Every wait has a deadline; nothing runs unbounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import sys
import time
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection, wait
from typing import Any

import redis

from chat_testkit.process import log_problems

from .chaos import Driver, Probe, Schedule, parse_faults, summarize
from .client import socketio_url
from .histogram import Histogram
from .plan import DeviceSpec, WorkerPlan, WorkerResult
from .population import Conversation, Population, User
from .procstat import Sampler, loadavg
from .report import build, storm_sends, storm_summary, table
from .scenarios import Config
from .stack import Stack, own_gateways_for, stop_own_gateways
from .worker import worker_main


class ScenarioFailed(RuntimeError):
    pass


@dataclass
class Topology:
    users: list[User]
    conversations: list[Conversation]  # the ones the scenario sends to
    devices: list[DeviceSpec]
    gateway_urls: list[str]


@dataclass
class Live:
    """The latest progress of each generator process, and interval latencies merged."""

    snapshots: dict[int, dict[str, Any]] = field(default_factory=dict)
    ack: Histogram = field(default_factory=Histogram)
    e2e: Histogram = field(default_factory=Histogram)
    lag: Histogram = field(default_factory=Histogram)
    connected: set[int] = field(default_factory=set)
    ready: set[int] = field(default_factory=set)
    stopped: set[int] = field(default_factory=set)
    dropped: dict[int, int] = field(default_factory=dict)
    results: dict[int, WorkerResult] = field(default_factory=dict)

    def total(self, key: str) -> int:
        return sum(int(s.get(key, 0)) for s in self.snapshots.values())

    def take(self, worker: int, snapshot: dict[str, Any]) -> None:
        self.snapshots[worker] = snapshot
        self.ack.merge(Histogram.from_wire(snapshot["ack"]))
        self.e2e.merge(Histogram.from_wire(snapshot["e2e"]))
        self.lag.merge(Histogram.from_wire(snapshot["lag"]))

    def reset_interval(self) -> None:
        self.ack, self.e2e, self.lag = Histogram(), Histogram(), Histogram()


class Runner:
    def __init__(
        self,
        stack: Stack,
        population: Population,
        loop: asyncio.AbstractEventLoop,
        *,
        quiet: bool = False,
        use_uvloop: bool = True,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.stack = stack
        self.population = population
        self.loop = loop
        self.quiet = quiet
        self.use_uvloop = use_uvloop
        self.extra_env = extra_env or {}
        self.conversations: list[Conversation] = []  # every one made in this run
        self._made: dict[tuple[Any, ...], list[Conversation]] = {}
        self.runs = 0
        self.probe: Probe | None = None  # chaos's REST prober, stopped whatever happens
        self.tty = sys.stderr.isatty()
        self._last_line = 0.0

    # --- setup -------------------------------------------------------------------------------

    async def _conversations(self, config: Config, users: list[User]) -> list[Conversation]:
        if config.scenario in ("direct", "storm", "chaos"):
            key: tuple[Any, ...] = ("direct", len(users), config.convs_per_user)
            if key not in self._made:
                self._made[key] = await self.population.direct_ring(users, config.convs_per_user)
                self.conversations.extend(self._made[key])
            return self._made[key]
        if config.scenario == "group":
            key = ("group", config.groups, config.members)
            if key not in self._made:
                self._made[key] = await self.population.groups(users, config.groups, config.members)
                self.conversations.extend(self._made[key])
            return self._made[key]
        return []

    async def _prepare(self, config: Config, gateway_urls: list[str]) -> Topology:
        count = config.groups * config.members if config.scenario == "group" else config.users
        users = await self.population.ensure_users(count)
        await self.population.refresh_older_than(600)
        users = self.population.users[:count]
        conversations = await self._conversations(config, users)
        if config.scenario in ("direct", "group", "chaos"):
            n_devices = len(users) * config.devices
        elif config.scenario == "idle":
            n_devices = config.connections
        else:
            n_devices = config.clients
        devices = []
        sockets = [socketio_url(u) for u in gateway_urls]
        for i in range(n_devices):
            position, d = i % len(users), i // len(users)
            first = (position + d) % len(sockets)
            order = sockets[first:] + sockets[:first]
            user = users[position]
            devices.append(DeviceSpec(i, user.index, user.token, order))
        return Topology(users, conversations, devices, gateway_urls)

    def _plans(
        self, config: Config, topo: Topology, base: dict[str, int], tag: str
    ) -> tuple[list[WorkerPlan], dict[int, list[int]], list[int]]:
        every = self.conversations
        conv_ids = [c.id for c in every]
        conv_index = {c.id: i for i, c in enumerate(every)}
        conv_base = [base.get(c.id, 0) for c in every]
        user_convs: dict[int, list[int]] = {}
        for i, conversation in enumerate(every):
            for member in conversation.members:
                user_convs.setdefault(member, []).append(i)
        devices_of_user: dict[int, list[int]] = {}
        for device in topo.devices:
            devices_of_user.setdefault(device.user, []).append(device.index)
        conv_devices: dict[int, list[int]] = {
            i: [d for m in c.members for d in devices_of_user.get(m, [])]
            for i, c in enumerate(every)
        }
        sending = {conv_index[c.id] for c in topo.conversations} if config.rate > 0 else set()
        workers = max(1, min(config.workers, len(topo.devices) or 1))
        plans = []
        for w in range(workers):
            mine = [d for d in topo.devices if d.index % workers == w]
            slots = [
                (d.index, conv)
                for d in mine
                for conv in user_convs.get(d.user, [])
                if conv in sending
            ]
            plans.append(
                WorkerPlan(
                    worker=w,
                    workers=workers,
                    tag=tag,
                    devices=mine,
                    conv_ids=conv_ids,
                    conv_base=conv_base,
                    user_convs={d.user: user_convs.get(d.user, []) for d in mine},
                    conv_devices=[len(conv_devices[i]) for i in range(len(every))],
                    send_slots=slots,
                    rate=config.rate,
                    # Chaos sends until its faults are over: told to stop, never out of plan.
                    duration=_schedule(config).longest()
                    if config.scenario == "chaos"
                    else config.duration,
                    warmup=config.warmup,
                    size=config.size,
                    ack_timeout=config.ack_timeout,
                    connect_timeout=config.connect_timeout,
                    connect_concurrency=config.connect_concurrency,
                    reconnect_jitter=config.reconnect_jitter,
                    seed=config.seed,
                    use_uvloop=self.use_uvloop,
                    give_up_after=config.give_up_after,
                    answer_within=config.answer_within,
                    sync_spread=config.sync_spread,
                    record_arrivals=config.scenario == "chaos",
                )
            )
        return plans, conv_devices, conv_base

    # --- the pump: pipes, samples, progress -------------------------------------------------------

    def _pump(
        self,
        pipes: list[Connection],
        live: Live,
        sampler: Sampler,
        label: str,
        phase: str,
        started: float,
        until: float,
        done: Callable[[], bool] | None = None,
    ) -> bool:
        """Handle the workers' messages until `done()` or the deadline; True if done."""
        next_sample = time.time()
        while True:
            if done is not None and done():
                return True
            now = time.time()
            if now >= until:
                return False
            if now >= next_sample:
                sampler.sample()
                self._progress(live, sampler, label, phase, now - started)
                next_sample = now + 1.0
            for pipe in wait(pipes, timeout=max(0.0, min(0.2, until - now))):
                assert isinstance(pipe, Connection)
                try:
                    message = pipe.recv()
                except (EOFError, OSError):
                    pipes.remove(pipe)
                    continue
                kind, worker = message[0], message[1]
                if kind == "progress":
                    live.take(worker, message[2])
                elif kind == "connected":
                    live.take(worker, message[2])
                    live.connected.add(worker)
                elif kind == "ready":
                    live.ready.add(worker)
                elif kind == "result":
                    live.results[worker] = message[2]
                elif kind == "stopped":
                    live.stopped.add(worker)
                elif kind == "dropped":
                    live.dropped[worker] = message[2]
            if not pipes:
                return done is not None and bool(done())

    def _progress(
        self, live: Live, sampler: Sampler, label: str, phase: str, elapsed: float
    ) -> None:
        if self.quiet or phase == "start":
            return
        now = time.time()
        if not self.tty and now - self._last_line < 5.0:
            return
        self._last_line = now
        gens = [v for k, v in sampler.recent.items() if k.startswith("generator")]
        servers = " ".join(
            f"{k.replace('gateway', 'gw')} {v:.0f}"
            for k, v in sampler.recent.items()
            if not k.startswith(("generator", "coordinator"))
        )
        line = (
            f"[{label} {phase} {elapsed:5.1f}s] conn {live.total('connected')} "
            f"sent {live.total('sent')} acked {live.total('acked')} "
            f"deliv {live.total('delivered')}/{live.total('expected')} "
            f"inflight {live.total('in_flight')} err {live.total('errors')} | "
            f"ack p99 {live.ack.percentile(99):.1f} e2e p99 {live.e2e.percentile(99):.1f} "
            f"lag p99 {live.lag.percentile(99):.1f} ms | gen CPU "
            f"{'/'.join(f'{g:.0f}' for g in gens)}% | {servers}"
        )
        live.reset_interval()
        if self.tty:
            print("\r\033[K" + line[:200], end="", file=sys.stderr, flush=True)
        else:
            print(line, file=sys.stderr, flush=True)

    def _end_progress(self) -> None:
        if self.tty and not self.quiet:
            print(file=sys.stderr, flush=True)

    # --- one scenario -----------------------------------------------------------------------------

    def run(self, config: Config) -> dict[str, Any]:
        self.runs += 1
        stack = self.stack
        setup_started = time.monotonic()
        setup_before = self.population.stats.as_dict()
        storm = config.scenario == "storm"
        chaos = config.scenario == "chaos"
        if chaos and not (stack.own and stack.private and stack.mongo is not None):
            raise ScenarioFailed(
                "chaos runs only on the bench's own stack, with its own Redis, RabbitMQ and "
                "embedded database (no --dev, URLs or --mongodb-url)"
            )
        if chaos:
            try:
                parse_faults(config.faults)
            except ValueError as exc:
                raise ScenarioFailed(str(exc)) from None
        if storm and not stack.own:
            own_gateways_for(stack, 2, self.extra_env)
        gateway_urls = stack.owned_gateway_urls() if storm else list(stack.gateway_urls)
        if storm and len(gateway_urls) < 2:
            raise ScenarioFailed("storm needs two gateways the bench owns")
        if config.scenario == "idle" and stack.own and config.fresh_gateways:
            # A fresh heap, so that the RSS delta is the connections' and not reused memory.
            stack.restart_gateways()
        try:
            return self._run(config, gateway_urls, setup_started, setup_before)
        finally:
            if chaos:
                stack.heal()
            if storm:
                if stack.own:
                    stack.restart_gateway(0)
                else:
                    stop_own_gateways(stack)

    def _run(
        self,
        config: Config,
        gateway_urls: list[str],
        setup_started: float,
        setup_before: dict[str, Any],
    ) -> dict[str, Any]:
        stack = self.stack
        topo = self.loop.run_until_complete(self._prepare(config, gateway_urls))
        base = self.loop.run_until_complete(self.population.last_seqs(self.conversations))
        # Marks this run's messages: anything else on the same conversations is ignored.
        tag = f"b{uuid.uuid4().hex[:10]}"
        plans, conv_devices, conv_base = self._plans(config, topo, base, tag)
        after = self.population.stats.as_dict()
        setup = {
            k: round(after[k] - setup_before[k], 2)
            if k == "seconds"
            else after[k] - setup_before[k]
            for k in after
        }
        setup["seconds"] = round(time.monotonic() - setup_started, 2)
        sampler = Sampler(stack.pids(gateway_urls))
        setup["settle_s"] = self._settle(sampler, config.label)

        ctx = multiprocessing.get_context("spawn")
        pipes: list[Connection] = []
        processes = []
        for plan in plans:
            ours, theirs = ctx.Pipe()
            process = ctx.Process(target=worker_main, args=(plan, theirs), daemon=True)
            process.start()
            theirs.close()
            pipes.append(ours)
            processes.append(process)
        for i, process in enumerate(processes):
            assert process.pid is not None
            sampler.add(f"generator{i + 1}", process.pid)
        sampler.add("coordinator", os.getpid())
        sampler.alone.add("coordinator")
        live = Live()
        label = config.label
        all_pipes = list(pipes)
        try:
            return self._drive(
                config,
                topo,
                plans,
                pipes,
                processes,
                sampler,
                live,
                label,
                setup,
                conv_devices,
                conv_base,
                gateway_urls,
            )
        finally:
            self._end_progress()
            if self.probe is not None:
                self.probe.stop()
                self.probe = None
            for pipe in all_pipes:
                with contextlib.suppress(OSError):
                    pipe.send(("finish",))
            deadline = time.time() + 15
            for process in processes:
                process.join(max(0.1, deadline - time.time()))
                if process.is_alive():
                    process.kill()
                    process.join(5)
            for pipe in all_pipes:
                pipe.close()

    def _drive(
        self,
        config: Config,
        topo: Topology,
        plans: list[WorkerPlan],
        pipes: list[Connection],
        processes: list[Any],
        sampler: Sampler,
        live: Live,
        label: str,
        setup: dict[str, Any],
        conv_devices: dict[int, list[int]],
        conv_base: list[int],
        gateway_urls: list[str],
    ) -> dict[str, Any]:
        stack = self.stack
        workers = len(plans)
        started = time.time()

        def pump(phase: str, until: float, done: Callable[[], bool] | None = None) -> bool:
            return self._pump(pipes, live, sampler, label, phase, started, until, done)

        def everyone(reported: Collection[int]) -> Callable[[], bool]:
            """A condition: every generator process is in `reported` (a set or dict of `live`)."""
            return lambda: len(reported) == workers

        # Every process up (imports done) before anyone connects, so that connects overlap.
        for pipe in pipes:
            pipe.send(("ping",))
        if not pump("start", time.time() + 60, everyone(live.ready)):
            raise ScenarioFailed("the generator processes did not start in time")
        sampler.sample()
        idle = config.scenario == "idle"
        window = sampler.mark() if idle else None
        connecting = sampler.mark()
        rss_before = {n: sampler.rss.get(n, 0) for n in sampler.pids if n.startswith("gateway")}
        gen_before = sum(sampler.rss.get(n, 0) for n in sampler.pids if n.startswith("generator"))
        for pipe in pipes:
            pipe.send(("connect",))
        connect_deadline = time.time() + max(60.0, config.connect_timeout * 4)
        if not pump("connect", connect_deadline, everyone(live.connected)):
            raise ScenarioFailed("the generator processes did not finish connecting in time")
        # CPU of the connect burst alone: whether the generator kept up with it.
        burst, _, burst_s = sampler.usage(connecting)
        extra: dict[str, Any] = {
            "connect_phase": {
                "seconds": round(burst_s, 2),
                "cpu_pct": {n: round(u.cpu_pct, 1) for n, u in sorted(burst.items())},
            }
        }
        t_kill: float | None = None
        killed_url = ""
        t0 = time.time() + 0.5
        if idle:
            connected_at = time.time()
            # Hold the connections, sampling, for `duration` seconds.
            pump("hold", time.time() + config.duration)
            assert window is not None
            usage, machine_pct, window_s = sampler.usage(window)
            load_start = window.load
            extra["idle"] = self._idle_summary(
                live, usage, rss_before, gen_before, sampler, connected_at
            )
            t0 = connected_at
            if config.drop:
                extra["drop"] = self._disconnect_storm(config, topo, pipes, live, pump)
        else:
            for pipe in pipes:
                pipe.send(("run", t0))
            pump("wait", t0)
            window = sampler.mark()
            load_start = window.load
            t_end = t0 + config.duration
            if config.scenario == "storm":
                kill_at = t0 + min(config.kill_after, config.duration)
                pump("send", kill_at)
                after_kill = sampler.mark()
                t_kill = time.time()
                killed_url = socketio_url(gateway_urls[0]).split("/socket.io")[0]
                stack.kill_gateway(0)
                pump("storm", t_end)
                storm_usage, _, storm_s = sampler.usage(after_kill)
                extra["after_kill"] = {
                    "seconds": round(storm_s, 2),
                    "cpu_pct": {n: round(u.cpu_pct, 1) for n, u in sorted(storm_usage.items())},
                }
            elif config.scenario == "chaos":
                schedule = _schedule(config)
                driver = Driver(stack, schedule, t0)
                probe = self.probe = Probe(self._probe_targets(topo))
                probe.start()
                driver.start()
                try:
                    limit = t0 + schedule.longest()
                    while driver.is_alive() and time.time() < limit:
                        pump(
                            driver.phase,
                            min(limit, time.time() + 1.0),
                            lambda: not driver.is_alive(),
                        )
                        # Restarted servers and services are watched under their role.
                        for name, pid in stack.pids(gateway_urls).items():
                            sampler.replace(name, pid)
                finally:
                    driver.abort()
                    driver.join(180)
                for pipe in pipes:
                    pipe.send(("stop",))
                pump("stop", time.time() + 30, everyone(live.stopped))
                t_end = time.time()
                # What was sent is what the faults took: the duration, for the rates.
                config = replace(config, duration=round(t_end - t0, 1))
            else:
                pump("send", t_end)
            usage, machine_pct, window_s = sampler.usage(window)

            def drained() -> bool:
                settled = (
                    live.total("delivered") >= live.total("expected")
                    and live.total("in_flight") == 0
                )
                if config.scenario == "storm":
                    settled = settled and live.total("synced") >= live.total("fates")
                if config.scenario == "chaos":
                    return settled
                return settled and live.total("sent") >= int(config.rate * config.duration)

            drain_for = config.drain_timeout
            if config.scenario == "storm":
                drain_for = max(drain_for, (t_kill or t_end) + config.sync_timeout - time.time())
            # Progress snapshots come once a second: wait for one taken after the last send.
            pump("drain", time.time() + 1.2)
            pump("drain", time.time() + drain_for, drained)
            if config.scenario == "chaos":
                probe.stop()
                self.probe = None
        load_end = loadavg()
        for pipe in pipes:
            pipe.send(("finish",))
        pump("collect", time.time() + 60, everyone(live.results))
        self._end_progress()
        if len(live.results) != workers:
            raise ScenarioFailed("a generator process did not report its results")
        results = [live.results[w] for w in sorted(live.results)]
        stored = None
        if topo.conversations and config.rate > 0:
            index = {c.id: i for i, c in enumerate(self.conversations)}
            base_sum = sum(conv_base[index[c.id]] for c in topo.conversations)
            stored = self._stored_when_still(topo.conversations) - base_sum
        if config.scenario == "storm":
            fates = [f for r in results for f in r.fates]
            storm = extra["storm"] = storm_summary(fates, t_kill, killed_url)
            killed_socket = socketio_url(gateway_urls[0])
            storm["clients_on_killed_gateway"] = sum(
                1 for d in topo.devices if d.gateways[0] == killed_socket
            )
            if t_kill is not None:
                # From the kill until every dropped client had synced (else the end of sending).
                synced = storm.get("all_synced_s")
                until = t_kill + synced if synced is not None else t0 + config.duration
                storm["sends"] = storm_sends(
                    [r.timeline for r in results], t_kill - t0, until - t0, config.rate
                )
                storm["shed"] = storm["sends"]["shed"]
        if config.scenario == "chaos":
            extra["chaos"] = {
                "schedule": {
                    "faults": schedule.faults,
                    "lead_s": schedule.lead,
                    "down_s": schedule.down,
                    "gap_s": schedule.gap,
                    "deliver_within_s": config.deliver_within,
                },
                "faults": summarize(
                    driver.records,
                    t0=t0,
                    end=time.time(),
                    acked=[a for r in results for a in r.acked],
                    arrivals={d: a for r in results for d, a in r.arrivals.items()},
                    conv_devices=conv_devices,
                    down={d for r in results for d in r.down},
                    refusals=[x for r in results for x in r.refusals],
                    probes=probe.records,
                    within=config.deliver_within,
                ),
                "records": [record.as_dict(t0) for record in driver.records],
                "probes": len(probe.records),
            }
        topology = {
            "users": len(topo.users),
            "devices": len(topo.devices),
            "conversations": len(topo.conversations),
            "gateways": gateway_urls,
            "generator_processes": workers,
        }
        stack_info = {
            "own": stack.own,
            "auth": stack.auth_url,
            "message": stack.message_url,
            "gateways": gateway_urls,
            "namespace": stack.namespace,
            "db": stack.db,
            "gateway_env": stack.gateway_env if (stack.own or config.scenario == "storm") else {},
            # Redis and RabbitMQ of the run's own, by port (chaos).
            "private_servers": {name: server.port for name, server in stack.private.items()},
        }
        return build(
            config,
            results,
            conv_devices=conv_devices,
            conv_base=conv_base,
            stored=stored,
            t0=t0,
            usage=usage,
            machine_pct=machine_pct,
            window_s=window_s,
            load_start=load_start,
            load_end=load_end,
            setup=setup,
            stack=stack_info,
            topology=topology,
            extra=extra,
        )

    def _probe_targets(self, topo: Topology) -> dict[str, tuple[str, dict[str, str]]]:
        """What chaos probes over REST: every service's readiness, a read from auth and message."""
        stack = self.stack
        bearer = {"Authorization": f"Bearer {topo.users[0].token}"}
        targets = {
            "auth /v1/users/me": (stack.auth_url + "/v1/users/me", bearer),
            "message /v1/conversations": (stack.message_url + "/v1/conversations?limit=1", bearer),
            "auth /readyz": (stack.auth_url + "/readyz", {}),
            "message /readyz": (stack.message_url + "/readyz", {}),
        }
        for i, url in enumerate(stack.gateway_urls):
            targets[f"gateway{i + 1} /readyz"] = (url + "/readyz", {})
        return targets

    def _disconnect_storm(
        self,
        config: Config,
        topo: Topology,
        pipes: list[Connection],
        live: Live,
        pump: Callable[[str, float, Callable[[], bool] | None], bool],
    ) -> dict[str, Any]:
        """Every connection dropped at once; how long until each user reads offline."""
        stack = self.stack
        owners = {d.user for d in topo.devices}
        user_ids = [u.id for u in topo.users if u.index in owners]
        logs = [g.log_path for g in stack.gateways]
        offsets = {path: path.stat().st_size if path.exists() else 0 for path in logs}
        client = redis.Redis.from_url(stack.redis_url, socket_timeout=5)
        offline_at: dict[str, float] = {}
        try:
            online_before = len(user_ids) - len(_offline(client, stack.namespace, user_ids))
            dropped_at = time.time()
            for pipe in pipes:
                pipe.send(("drop",))
            polled = 0.0

            def everyone_offline() -> bool:
                nonlocal polled
                now = time.time()
                if now - polled >= 0.1:
                    polled = now
                    for user_id in _offline(client, stack.namespace, user_ids):
                        offline_at.setdefault(user_id, now - dropped_at)
                return len(offline_at) == len(user_ids) and len(live.dropped) == len(pipes)

            pump("drop", dropped_at + config.offline_timeout, everyone_offline)
        finally:
            client.close()
        # The gateways may still be logging what the disconnects set off.
        time.sleep(2.0)
        error_lines: int | None = None
        if logs:
            error_lines = 0
            for path in logs:
                with path.open("rb") as log:
                    log.seek(offsets[path])
                    error_lines += len(log_problems(log.read().decode(errors="replace")))
        hist = Histogram()
        for seconds in offline_at.values():
            hist.record(seconds)
        everyone = len(offline_at) == len(user_ids)
        return {
            "dropped": sum(live.dropped.values()),
            "users": len(user_ids),
            "online_before": online_before,
            "still_online": len(user_ids) - len(offline_at),
            "all_offline_s": round(max(offline_at.values()), 2)
            if everyone and offline_at
            else None,
            "offline_s": {
                k: round(v / 1000.0, 3) for k, v in hist.summary().items() if k != "count"
            },
            "gateway_error_lines": error_lines,
            "how": "client sockets aborted at once; presence read from the gateways' Redis keys",
        }

    def _settle(self, sampler: Sampler, label: str, limit: float = 60.0) -> float:
        """Wait (bounded) until the services are quiet, so a backlog of the last scenario
        (an overloaded run leaves queued commands and events) does not load this one."""
        started = time.monotonic()
        services = [n for n in sampler.pids if n in ("auth", "message", "mongodb")]
        services += [n for n in sampler.pids if n.startswith("gateway")]
        sampler.sample()
        quiet = 0
        while time.monotonic() - started < limit and quiet < 2:
            time.sleep(0.5)
            sampler.sample()
            busy = {n: sampler.recent.get(n, 0.0) for n in services}
            quiet = quiet + 1 if all(v < 10.0 for v in busy.values()) else 0
            if quiet < 2 and not self.quiet and time.monotonic() - started > 3:
                top = ", ".join(f"{n} {v:.0f}%" for n, v in busy.items() if v >= 10.0)
                print(f"[{label} settling] waiting for a quiet stack: {top}", file=sys.stderr)
        return round(time.monotonic() - started, 1)

    def _stored_when_still(self, conversations: list[Conversation], limit: float = 30.0) -> int:
        """Messages stored in these conversations, once the count stops moving (bounded)."""
        deadline = time.monotonic() + limit
        last = -1
        while True:
            seqs = self.loop.run_until_complete(self.population.last_seqs(conversations))
            total = sum(seqs.values())
            if total == last or time.monotonic() >= deadline:
                return total
            last = total
            time.sleep(1.0)

    def _idle_summary(
        self,
        live: Live,
        usage: dict[str, Any],
        rss_before: dict[str, int],
        gen_before: int,
        sampler: Sampler,
        connected_at: float,
    ) -> dict[str, Any]:
        connected = live.total("connected")
        delta_kb = sum(max(0, sampler.rss.get(n, 0) - kb) for n, kb in rss_before.items())
        gen_now = sum(sampler.rss.get(n, 0) for n in sampler.pids if n.startswith("generator"))
        return {
            "connected": connected,
            "rss_delta_mb": round(delta_kb / 1024, 1),
            "rss_kb_per_connection": round(delta_kb / connected, 2) if connected else None,
            "generator_kb_per_connection": round((gen_now - gen_before) / connected, 2)
            if connected
            else None,
            "gateway_rss_before_mb": {n: round(kb / 1024, 1) for n, kb in rss_before.items()},
            "held_s": round(time.time() - connected_at, 1),
        }


def _schedule(config: Config) -> Schedule:
    return Schedule(
        faults=parse_faults(config.faults),
        lead=config.fault_lead,
        down=config.fault_down,
        gap=config.fault_gap,
        recover_timeout=config.recover_timeout,
    )


def _offline(client: redis.Redis, namespace: str, user_ids: list[str]) -> set[str]:
    """Users with no live connection, read as the gateways read presence (their Redis keys)."""
    seconds, micros = client.time()
    now = seconds + micros / 1_000_000
    with client.pipeline(transaction=False) as pipe:
        for user_id in user_ids:
            pipe.zcount(f"{namespace}:presence:conns:{user_id}", now, "+inf")
        counts = pipe.execute()
    return {user_id for user_id, n in zip(user_ids, counts, strict=True) if not n}


def report_table(report: dict[str, Any], config: Config) -> str:
    return table(report, config.describe())
