"""Field types every contract shares, declared once."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

# The largest integer BSON stores: a larger seq could never match a stored one, and would
# overflow the driver's encoder instead of being refused as bad input.
MAX_SEQ = 2**63 - 1

Id = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Seq = Annotated[int, Field(ge=0, le=MAX_SEQ)]
ClientMsgId = Annotated[str, StringConstraints(min_length=1, max_length=64)]
# A bound for parsing only; the configurable limit is the message service's to check.
Text = Annotated[str, StringConstraints(max_length=100_000)]
