"""Request bodies of the privacy endpoints: closed, strict, nothing but the known fields."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints, model_validator

from chat_auth.users.models import Request
from chat_contracts.models import GroupInvitesFrom, PresenceVisibleTo

UserId = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Cursor = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class SettingsPatch(Request):
    """Only the fields present change; an explicit null is refused (there is no "unset")."""

    presence_visible_to: PresenceVisibleTo | None = Field(default=None)
    group_invites_from: GroupInvitesFrom | None = Field(default=None)
    push_previews: bool | None = Field(default=None)

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            nulls = [k for k, v in data.items() if v is None]
            if nulls:
                raise ValueError(f"null is not a value of {', '.join(sorted(nulls))}")
        return data

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)
