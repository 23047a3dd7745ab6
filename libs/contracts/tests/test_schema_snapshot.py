"""The contracts' JSON schema matches the committed snapshot: a contract change is deliberate."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from chat_contracts import EVENT_TYPES
from chat_contracts.commands import COMMANDS
from chat_contracts.schema import contract_schemas, render

SNAPSHOT = Path(__file__).with_name("contracts.schema.json")


def _changed(committed: dict[str, object], live: dict[str, object]) -> list[str]:
    return sorted(name for name in {*committed, *live} if committed.get(name) != live.get(name))


def test_live_schema_matches_the_committed_snapshot() -> None:
    committed = json.loads(SNAPSHOT.read_text())
    live = contract_schemas()
    changed = [
        *(["envelope"] if committed["envelope"] != live["envelope"] else []),
        *(f"event {n}" for n in _changed(committed["events"], live["events"])),
        *(f"command {n}" for n in _changed(committed["commands"], live["commands"])),
    ]
    assert not changed, (
        f"The contracts changed ({', '.join(changed)}). If that is deliberate, run "
        "`make contracts` and commit libs/contracts/tests/contracts.schema.json; a change of "
        "an event's meaning needs a new event version, not an edit."
    )
    assert SNAPSHOT.read_text() == render(), "run `make contracts` to re-render the snapshot"


def test_snapshot_covers_every_event_type_with_its_version() -> None:
    events = contract_schemas()["events"]
    assert sorted(events) == sorted(EVENT_TYPES)
    for name, cls in EVENT_TYPES.items():
        assert events[name]["version"] == cls.version
        assert events[name]["data"]["additionalProperties"] is False, f"{name} must be closed"


def test_snapshot_covers_every_command_closed_with_its_reply() -> None:
    commands = contract_schemas()["commands"]
    assert sorted(commands) == sorted(COMMANDS)
    for name, cls in COMMANDS.items():
        assert commands[name]["request"]["additionalProperties"] is False, f"{name} must be closed"
        answer = commands[name]["answer"]
        assert cls.reply.__name__ in json.dumps(answer), f"{name}'s answer must carry its reply"


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
