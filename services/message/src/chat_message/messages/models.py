"""Request bodies of the message endpoints and of the gateway's send command."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

from chat_contracts.socket import MessageContent

Id = Annotated[str, StringConstraints(min_length=1, max_length=64)]
# Hard bound for parsing; the configurable limit (4000 by default) is checked by the use case.
Text = Annotated[str, StringConstraints(max_length=100_000)]

# The body of POST /v1/conversations/{id}/messages: the same content a socket send carries.
SendMessage = MessageContent


class SendCommand(MessageContent):
    """The gateway's `message:send`: the content plus who and where."""

    sender_id: Id
    conversation_id: Id


class EditMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    text: Text
