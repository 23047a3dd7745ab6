"""Request bodies of the conversation endpoints."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from chat_contracts.fields import Id


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class CreateDirect(Request):
    type: Literal["direct"]
    member_ids: Annotated[list[Id], Field(min_length=1, max_length=1)]


class CreateGroup(Request):
    type: Literal["group"]
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    member_ids: Annotated[list[Id], Field(max_length=1000)]


CreateConversation = Annotated[CreateDirect | CreateGroup, Field(discriminator="type")]


class AddMembers(Request):
    user_ids: Annotated[list[Id], Field(min_length=1, max_length=1000)]
