"""The events' JSON schema matches the committed snapshot: a contract change is deliberate."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from chat_contracts import EVENT_TYPES
from chat_contracts.schema import event_schemas, render

SNAPSHOT = Path(__file__).with_name("events.schema.json")


def test_live_schema_matches_the_committed_snapshot() -> None:
    committed = json.loads(SNAPSHOT.read_text())
    live = event_schemas()
    changed = sorted(
        name
        for name in {*committed["events"], *live["events"]}
        if committed["events"].get(name) != live["events"].get(name)
    )
    if committed["envelope"] != live["envelope"]:
        changed.insert(0, "envelope")
    assert not changed, (
        f"The event contracts changed ({', '.join(changed)}). If that is deliberate, run "
        "`make contracts` and commit libs/contracts/tests/events.schema.json; a change of "
        "meaning needs a new event version, not an edit."
    )
    assert SNAPSHOT.read_text() == render(), "run `make contracts` to re-render the snapshot"


def test_snapshot_covers_every_event_type_with_its_version() -> None:
    events = event_schemas()["events"]
    assert sorted(events) == sorted(EVENT_TYPES)
    for name, cls in EVENT_TYPES.items():
        assert events[name]["version"] == cls.version
        assert events[name]["data"]["additionalProperties"] is False, f"{name} must be closed"


def test_module_prints_the_snapshot_document() -> None:
    # `make contracts` runs exactly this; its output must be the deterministic rendering.
    result = subprocess.run(
        [sys.executable, "-m", "chat_contracts.schema"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert result.stdout == render()
    assert json.loads(result.stdout)["envelope"]["additionalProperties"] is False
