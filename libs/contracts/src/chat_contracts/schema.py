"""The JSON schema of every event, as one deterministic document.

`python -m chat_contracts.schema` prints it; `make contracts` stores it as the
snapshot that the contracts tests compare against, so that any change to an
event's shape shows up in review as a diff of that file.
"""

from __future__ import annotations

import json
from typing import Any

from chat_contracts.events import EVENT_TYPES, Envelope


def event_schemas() -> dict[str, Any]:
    """`{envelope, events: {type: {version, data}}}`: what travels on the events exchange."""
    return {
        "envelope": Envelope.model_json_schema(),
        "events": {
            event_type: {"version": cls.version, "data": cls.model_json_schema()}
            for event_type, cls in sorted(EVENT_TYPES.items())
        },
    }


def render() -> str:
    # Sorted keys and a trailing newline: the same contracts always give the same bytes.
    return json.dumps(event_schemas(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> None:
    print(render(), end="")


if __name__ == "__main__":
    main()
