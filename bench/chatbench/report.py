"""From what the generator processes saw to the report: one table for people, one JSON line.

Definitions (per scenario run):
- lost: (message, device) pairs where the message was acknowledged to its sender
  and a device that should have it (every device of every member that was
  connected at the end, the sending device aside) never got it, live or by sync.
- duplicates: `message:new` for a message the device already had from a
  `message:new` (overlap between a sync and live delivery is expected, not counted).
- seq gaps: per device and conversation, seqs missing below the highest seq the
  device holds (what would make an app call `sync`).
- duplicate stores: a resend with the same client_msg_id answered with another message.
- reused seqs: one seq of a conversation acknowledged for two different messages: the
  store lost the first after acknowledging it (a crash), and gave its seq again.
- latencies are measured from the time a send was due (open loop), in ms.
- answers: every send attempt, from when it went out to its answer, whatever the
  answer said (accepted, `unavailable`, `timeout`...); `never_answered`: attempts
  with no answer within --ack-timeout (those younger at the end are `in_flight_at_end`).
"""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict
from typing import Any

from .histogram import Histogram
from .plan import DeviceFate, WorkerResult
from .procstat import CPUS, Usage
from .scenarios import Config, target_size, targets


def merge_results(results: list[WorkerResult]) -> dict[str, Any]:
    hists: dict[str, Histogram] = {}
    counters: dict[str, int] = defaultdict(int)
    errors: dict[str, int] = defaultdict(int)
    for result in results:
        for name, wire in result.hists.items():
            hists.setdefault(name, Histogram()).merge(Histogram.from_wire(wire))
        for name, n in result.counters.items():
            counters[name] += n
        for name, n in result.errors.items():
            errors[name] += n
    return {"hists": hists, "counters": dict(counters), "errors": dict(errors)}


def delivery_accounting(
    results: list[WorkerResult],
    conv_devices: dict[int, list[int]],
    conv_base: list[int],
) -> dict[str, int]:
    """Lost deliveries and seq gaps over every generator process's devices."""
    held: dict[int, dict[int, list[int]]] = {}
    down: set[int] = set()
    acked: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for result in results:
        held.update(result.held)
        down.update(result.down)
        for conv, seq, sender, *_ in result.acked:
            acked[conv].append((seq, sender))
    reused = sum(len(m) - len({seq for seq, _ in m}) for m in acked.values())
    lost = 0
    lost_messages: set[tuple[int, int]] = set()
    for conv, messages in acked.items():
        for device in conv_devices.get(conv, []):
            if device in down:
                continue
            have = set(held.get(device, {}).get(conv, []))
            for seq, sender in messages:
                if sender != device and seq not in have:
                    lost += 1
                    lost_messages.add((conv, seq))
    gaps = 0
    for by_conv in held.values():
        for conv, seqs in by_conv.items():
            if not seqs:
                continue
            base = conv_base[conv]
            present = {s for s in seqs if s > base}
            if present:
                gaps += max(present) - base - len(present)
    return {
        "lost": lost,
        "lost_messages": len(lost_messages),
        "seq_gaps": gaps,
        "devices_down": len(down),
        "reused_seqs": reused,
    }


def _rate(n: int, seconds: float) -> float:
    return round(n / seconds, 1) if seconds > 0 else 0.0


def window_outcomes(
    timelines: list[dict[int, dict[str, int]]], start_s: float, end_s: float
) -> dict[str, int]:
    """Send answers by outcome over the seconds [start_s, end_s) of the run (from t0)."""
    first, last = math.floor(start_s), math.ceil(end_s)
    total: dict[str, int] = defaultdict(int)
    for timeline in timelines:
        for second, outcomes in timeline.items():
            if first <= second < last:
                for outcome, n in outcomes.items():
                    total[outcome] += n
    return dict(sorted(total.items()))


def storm_sends(
    timelines: list[dict[int, dict[str, int]]], start_s: float, end_s: float, offered: float
) -> dict[str, Any]:
    """How sending fared between the kill and the last sync: shed, timed out, acked per s."""
    outcomes = window_outcomes(timelines, start_s, end_s)
    seconds = max(1, math.ceil(end_s) - math.floor(start_s))
    return {
        "window_s": [round(start_s, 2), round(end_s, 2)],
        "answers": outcomes,
        "shed": outcomes.get("unavailable", 0),
        "timeouts": outcomes.get("timeout", 0),
        "acked_per_s": round(outcomes.get("ok", 0) / seconds, 1),
        "offered_per_s": offered,
    }


def answer_summary(
    hist: Histogram, counters: dict[str, int], refusals: list[tuple[str, float, float, str]]
) -> dict[str, Any]:
    """Send attempts and their answers: how fast, how many refused, how many never."""
    refused: dict[str, int] = defaultdict(int)
    for kind, _, _, code in refusals:
        if kind == "send":
            refused[code] += 1
    return {
        "ms": hist.summary(),
        "slow": counters.get("slow_answers", 0),
        # Attempts older than --ack-timeout are swept as `no_answer`; those still waiting at
        # the end are younger, and may yet be answered in time.
        "never_answered": refused.get("no_answer", 0),
        "in_flight_at_end": counters.get("unanswered_at_end", 0),
        "refused": dict(sorted(refused.items())),
        "retries": counters.get("retries", 0),
        "abandoned": counters.get("abandoned", 0),
        "unanswered_on_close": counters.get("unanswered_on_close", 0),
    }


def sync_summary(
    counters: dict[str, int], refusals: list[tuple[str, float, float, str]]
) -> dict[str, Any]:
    required = {
        name.split(":", 1)[1]: n
        for name, n in sorted(counters.items())
        if name.startswith("sync_required:")
    }
    refused: dict[str, int] = defaultdict(int)
    for kind, _, _, code in refusals:
        if kind == "sync":
            refused[code] += 1
    return {
        "syncs": counters.get("syncs", 0),
        "more_pages": counters.get("sync_pages_more", 0),
        "after_gap": counters.get("gap_syncs", 0),
        "required": required,
        "refused": dict(sorted(refused.items())),
    }


def storm_summary(fates: list[DeviceFate], t_kill: float | None, killed_url: str) -> dict[str, Any]:
    if t_kill is None:
        return {"killed_at": None}
    dropped = [f for f in fates if f.disconnected_at >= t_kill - 1.0 and killed_url in f.gateway]
    reconnected = [f.reconnected_at - t_kill for f in dropped if f.reconnected_at is not None]
    synced = [f.synced_at - t_kill for f in dropped if f.synced_at is not None]
    hist = Histogram()
    for seconds in synced:
        hist.record(seconds)
    every = bool(dropped) and len(synced) == len(dropped)
    return {
        "dropped_clients": len(dropped),
        "reconnected": len(reconnected),
        "synced": len(synced),
        "all_reconnected_s": round(max(reconnected), 3)
        if reconnected and len(reconnected) == len(dropped)
        else None,
        "all_synced_s": round(max(synced), 3) if every else None,
        "synced_s": {k: round(v / 1000.0, 3) for k, v in hist.summary().items() if k != "count"},
        "other_disconnects": len(fates) - len(dropped),
    }


def build(
    config: Config,
    results: list[WorkerResult],
    *,
    conv_devices: dict[int, list[int]],
    conv_base: list[int],
    stored: int | None,
    t0: float,
    usage: dict[str, Usage],
    machine_pct: float,
    window_s: float,
    load_start: list[float],
    load_end: list[float],
    setup: dict[str, Any],
    stack: dict[str, Any],
    topology: dict[str, Any],
    extra: dict[str, Any],
) -> dict[str, Any]:
    merged = merge_results(results)
    hists: dict[str, Histogram] = merged["hists"]
    counters: dict[str, int] = merged["counters"]
    refusals = [r for result in results for r in result.refusals]
    times: dict[str, float] = {}
    for result in results:
        for key, value in result.times.items():
            if key.endswith("start") or key.startswith("first"):
                times[key] = min(times.get(key, value), value)
            else:
                times[key] = max(times.get(key, value), value)
    accounting = delivery_accounting(results, conv_devices, conv_base)
    connected = counters.get("connected", 0)
    connect_span = times.get("connect_end", 0.0) - times.get("connect_start", 0.0)
    connect_rate = _rate(connected, connect_span) if connected and connect_span > 0 else 0.0
    if "idle" in extra:
        extra["idle"]["connect_rate"] = connect_rate
    duration = config.duration
    acked = counters.get("acked", 0)
    sent = counters.get("sent", 0)
    span_ack = max(duration, times.get("last_ack", 0.0) - t0) if acked else duration
    span_delivery = (
        max(duration, times.get("last_delivery", 0.0) - t0) if counters.get("live") else duration
    )
    generator = {n: u for n, u in usage.items() if n.startswith("generator")}
    lag = hists.get("lag", Histogram())
    reasons = []
    if lag.count and lag.percentile(99) > config.max_lag_ms:
        why = (
            " (the machine's CPUs were saturated: the generator waited for a CPU)"
            if machine_pct > 90
            else ""
        )
        reasons.append(f"send lag p99 {lag.percentile(99):.1f} ms > {config.max_lag_ms:g} ms{why}")
    phases = [("", {n: u.cpu_pct for n, u in generator.items()})]
    for phase in ("connect_phase", "after_kill"):
        if phase in extra:
            phases.append((f" during {phase.replace('_', ' ')}", extra[phase]["cpu_pct"]))
    for when, cpu in phases:
        for name, pct in cpu.items():
            if name.startswith("generator") and pct > config.max_generator_cpu:
                reasons.append(f"{name} CPU {pct:.0f}%{when} > {config.max_generator_cpu:g}%")
    warnings = []
    if reasons:
        warnings.append("the load generator was a bottleneck: " + "; ".join(reasons))
    if machine_pct > 95:
        warnings.append(
            f"the machine's CPUs were {machine_pct:.0f}% busy: servers and generator competed"
        )
    if accounting["devices_down"]:
        warnings.append(f"{accounting['devices_down']} devices were not connected at the end")
    report: dict[str, Any] = {
        "scenario": config.scenario,
        "label": config.label,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "config": config.as_dict(),
        "topology": topology,
        "setup": setup,
        "stack": stack,
        "offered_rate": config.rate,
        "sent": sent,
        "sent_rate": _rate(sent, duration),
        "acked": acked,
        "achieved_rate": _rate(acked, span_ack),
        "stored": stored,
        "ack_ms": hists.get("ack", Histogram()).summary(),
        "e2e_ms": hists.get("e2e", Histogram()).summary(),
        "send_lag_ms": lag.summary(),
        "connect_ms": hists.get("connect", Histogram()).summary(),
        "connected": connected,
        "connect_rate": connect_rate,
        "deliveries": counters.get("live", 0),
        "expected_deliveries": counters.get("expected", 0),
        "deliveries_per_s": _rate(counters.get("live", 0), span_delivery),
        "via_sync": counters.get("via_sync", 0),
        "lost": accounting["lost"],
        "lost_messages": accounting["lost_messages"],
        "duplicates": counters.get("duplicates", 0),
        # More messages stored than client_msg_ids sent: some send was stored twice.
        "duplicate_stores": counters.get("duplicate_stores", 0)
        + (max(0, stored - sent) if stored is not None else 0),
        "seq_gaps": accounting["seq_gaps"],
        "reused_seqs": accounting["reused_seqs"],
        "out_of_order": counters.get("out_of_order", 0),
        "devices_down": accounting["devices_down"],
        "disconnects": counters.get("disconnects", 0),
        "reconnects": counters.get("reconnects", 0),
        "resent": counters.get("resent", 0),
        "errors": dict(sorted(merged["errors"].items())),
        "answers": {
            "within_s": config.answer_within,
            **answer_summary(hists.get("answer", Histogram()), counters, refusals),
            # Sends accepted per second while the schedule ran (a backlog drained later
            # is not throughput).
            "accepted_per_s_while_sending": _rate(
                window_outcomes([r.timeline for r in results], 0, duration).get("ok", 0),
                duration,
            ),
        },
        "sync": sync_summary(counters, refusals),
        "processes": {n: u.as_dict() for n, u in sorted(usage.items())},
        "generator": {
            "processes": len(generator),
            "cpu_pct": {n: round(u.cpu_pct, 1) for n, u in sorted(generator.items())},
            "bottleneck": bool(reasons),
            "reasons": reasons,
        },
        "machine": {
            "cpus": CPUS,
            "cpu_pct": round(machine_pct, 1),
            "window_s": round(window_s, 2),
            "loadavg_start": load_start,
            "loadavg_end": load_end,
        },
        **extra,
        "warnings": warnings,
    }
    report["target_size"] = target_size(config)
    report["targets"] = [t.as_dict() for t in targets(config, report)]
    return report


# --- the table --------------------------------------------------------------------------------


def _ms(summary: dict[str, Any]) -> str:
    if not summary.get("count"):
        return "        -        -        -        -   (no samples)"
    return (
        f"{summary['p50']:9.2f}{summary['p90']:9.2f}{summary['p99']:9.2f}{summary['max']:9.2f}"
        f"   n={summary['count']}"
    )


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) if counts else "none"


def _num(value: float | None) -> str:
    return "      -" if value is None else f"{value:6.1f}"


def table(report: dict[str, Any], description: str) -> str:
    lines = [f"== {report['label']}: {description}"]
    setup = report["setup"]
    lines.append(
        f"setup {setup.get('seconds', 0):.1f} s (not measured): {setup.get('registered', 0)} "
        f"registered, {setup.get('refreshed', 0)} refreshed, {setup.get('logged_in', 0)} "
        f"logged in, {setup.get('conversations', 0)} conversation calls"
    )
    if report["scenario"] != "idle":
        lines.append(
            f"rate msg/s     offered {report['offered_rate']:g}   sent {report['sent_rate']:g}"
            f"   achieved (acked) {report['achieved_rate']:g}   deliveries/s "
            f"{report['deliveries_per_s']:g}"
        )
        lines.append("latency ms           p50      p90      p99      max")
        lines.append(f"  ack           {_ms(report['ack_ms'])}")
        lines.append(f"  end-to-end    {_ms(report['e2e_ms'])}")
        lines.append(f"  send lag      {_ms(report['send_lag_ms'])}")
        lines.append(
            f"messages       sent {report['sent']}  acked {report['acked']}  stored "
            f"{report['stored']}  deliveries {report['deliveries']} live + "
            f"{report['via_sync']} by sync (acked messages owe "
            f"{report['expected_deliveries']})"
        )
        lines.append(
            f"integrity      lost {report['lost']} (of {report['lost_messages']} messages)"
            f"  duplicates {report['duplicates']}  duplicate stores "
            f"{report['duplicate_stores']}  seq gaps {report['seq_gaps']}  out of order "
            f"{report['out_of_order']}  reused seqs {report['reused_seqs']}"
        )
        answers = report["answers"]
        lines.append(f"  answer        {_ms(answers['ms'])}  (each attempt, refusals included)")
        lines.append(
            f"answers        accepted {answers['accepted_per_s_while_sending']:g}/s while sending"
            f"  over {answers['within_s']:g} s {answers['slow']}  never answered "
            f"{answers['never_answered']} (in flight at the end "
            f"{answers['in_flight_at_end']})  refused {_counts(answers['refused'])}  retries "
            f"{answers['retries']}  abandoned {answers['abandoned']}  unanswered when the "
            f"connection dropped {answers['unanswered_on_close']}"
        )
        sync = report["sync"]
        lines.append(
            f"sync           {sync['syncs']} complete (+{sync['more_pages']} more pages), "
            f"{sync['after_gap']} after a gap; sync:required {_counts(sync['required'])}; "
            f"refused {_counts(sync['refused'])}"
        )
    lines.append(f"  connect       {_ms(report['connect_ms'])}")
    if "idle" in report:
        idle = report["idle"]
        lines.append(
            f"idle           {idle['connected']} connected at {idle['connect_rate']:g}/s; gateway "
            f"RSS +{idle['rss_delta_mb']:g} MB = {idle['rss_kb_per_connection']} KB per "
            f"connection (generator {idle['generator_kb_per_connection']} KB)"
        )
    if "storm" in report:
        storm = report["storm"]
        lines.append(
            f"storm          {storm.get('dropped_clients')} clients dropped; all reconnected in "
            f"{storm.get('all_reconnected_s')} s, all synced in {storm.get('all_synced_s')} s "
            f"(synced p50 {storm.get('synced_s', {}).get('p50')} s, p99 "
            f"{storm.get('synced_s', {}).get('p99')} s); resent {report['resent']}"
        )
        if "sends" in storm:
            sends = storm["sends"]
            lines.append(
                f"  sends in the storm ({sends['window_s'][0]:g}-{sends['window_s'][1]:g} s): "
                f"shed {sends['shed']}, timed out {sends['timeouts']}, acked "
                f"{sends['acked_per_s']:g}/s of {sends['offered_per_s']:g}/s offered"
            )
    if "drop" in report:
        drop = report["drop"]
        lines.append(
            f"disconnects    {drop['dropped']} connections of {drop['users']} users dropped at "
            f"once; all offline in {drop['all_offline_s']} s (p50 {drop['offline_s'].get('p50')}"
            f" s, p99 {drop['offline_s'].get('p99')} s; {drop['still_online']} still online); "
            f"gateway log error lines {drop['gateway_error_lines']}"
        )
    if "chaos" in report:
        lines.append(
            "fault          at s   up s  ready s  unavailable  timeout  no answer  acked  "
            "late/judged (pairs, missing)  5xx after recovery"
        )
        for f in report["chaos"]["faults"]:
            after = f.get("errors_5xx_after_recovery", f.get("errors_5xx"))
            late = f"{f['late_messages']}/{f['judged']} ({f['late_deliveries']}, "
            late += f"{f['missing_deliveries']})"
            lines.append(
                f"  {f['name']:<11}{f['at_s']:6.1f} {_num(f.get('down_s'))} "
                f"{_num(f.get('recover_s'))}  {f['sends_unavailable']:>11}  "
                f"{f['sends_timeout']:>7}  {f['sends_unanswered']:>9}  {f['acked']:>5}  "
                f"{late:<28}  {'-' if after is None else after['total']}"
                + (f" (last {after['last_s']:g} s after)" if after and after["last_s"] else "")
                + (f"  ERROR {f['error']}" if f.get("error") else "")
            )
    for phase, title in (("connect_phase", "connect burst"), ("after_kill", "after the kill")):
        if phase in report:
            cpu = report[phase]["cpu_pct"]
            shown = ", ".join(
                f"{n} {v:g}%" for n, v in cpu.items() if n.startswith(("gateway", "generator"))
            )
            lines.append(f"CPU, {title} ({report[phase]['seconds']:g} s): {shown}")
    lines.append(
        f"connections    disconnects {report['disconnects']}  reconnects {report['reconnects']}"
        f"  down at end {report['devices_down']}"
    )
    errors = report["errors"]
    lines.append(
        "errors         " + (", ".join(f"{k} {v}" for k, v in errors.items()) if errors else "none")
    )
    lines.append("process            CPU%   RSS MB (start -> end, max)")
    for name, p in report["processes"].items():
        mark = "" if p["alive"] else "  (gone)"
        lines.append(
            f"  {name:<14}{p['cpu_pct']:7.1f}   {p['rss_start_mb']:.1f} -> {p['rss_mb']:.1f}, "
            f"{p['rss_max_mb']:.1f}{mark}"
        )
    machine = report["machine"]
    lines.append(
        f"machine        {machine['cpu_pct']:g}% of {machine['cpus']} CPUs over "
        f"{machine['window_s']:g} s; load average {machine['loadavg_start'][0]:.2f} -> "
        f"{machine['loadavg_end'][0]:.2f}"
    )
    generator = report["generator"]
    lines.append(
        f"generator      {'BOTTLENECK: ' + '; '.join(generator['reasons']) if generator['bottleneck'] else 'ok'}"
        f" (send lag p99 {report['send_lag_ms']['p99']} ms)"
    )
    checks = []
    for t in report["targets"]:
        verdict = "n/a" if t["ok"] is None else ("PASS" if t["ok"] else "FAIL")
        checks.append(f"{t['name']} {t['op']} {t['limit']:g}: {verdict} ({t['value']})")
    size = "" if report["target_size"] else "  [not the target's size]"
    lines.append("targets        " + "; ".join(checks) + size)
    for warning in report["warnings"]:
        lines.append(f"WARNING        {warning}")
    return "\n".join(lines)


def json_line(report: dict[str, Any]) -> str:
    return json.dumps(report, separators=(",", ":"), sort_keys=False)
