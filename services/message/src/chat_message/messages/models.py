"""Request bodies of the message endpoints (a send's body is the contract's `MessageContent`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from chat_contracts.fields import Text


class EditMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    text: Text
