"""Identifiers: ObjectId hex strings, generated here and validated at the edge."""

from __future__ import annotations

import re

from bson import ObjectId

_OBJECT_ID = re.compile(r"^[0-9a-f]{24}$")


def new_id() -> str:
    return str(ObjectId())


def is_id(value: object) -> bool:
    return isinstance(value, str) and bool(_OBJECT_ID.match(value))
