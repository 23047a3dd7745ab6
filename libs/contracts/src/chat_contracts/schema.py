"""The JSON schema of every event and command, as one deterministic document.

`python -m chat_contracts.schema` prints it; `make contracts` stores it as the
snapshot that the contracts tests compare against, so that any change to the
shape of what travels between services shows up in review as a diff of that file.
"""

from __future__ import annotations

import json
from typing import Any

from chat_contracts.commands import COMMANDS, Answer
from chat_contracts.events import EVENT_TYPES, Envelope


def contract_schemas() -> dict[str, Any]:
    """`{envelope, events: {type: {version, data}}, commands: {name: {request, answer}}}`."""
    return {
        "envelope": Envelope.model_json_schema(),
        "events": {
            event_type: {"version": cls.version, "data": cls.model_json_schema()}
            for event_type, cls in sorted(EVENT_TYPES.items())
        },
        "commands": {
            name: {
                "request": cls.model_json_schema(),
                "answer": Answer[cls.reply].model_json_schema(),  # type: ignore[name-defined]
            }
            for name, cls in sorted(COMMANDS.items())
        },
    }


def render() -> str:
    # Sorted keys and a trailing newline: the same contracts always give the same bytes.
    return json.dumps(contract_schemas(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> None:
    print(render(), end="")


if __name__ == "__main__":
    main()
