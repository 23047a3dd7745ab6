"""Who may reach whom (CONTRACT §7.2, §7.5): blocks, settings and contacts, from the projection.

B is a contact of A when A has written in their direct conversation: `last_sent.<A>` on
that conversation, which every send already records, so nothing is written for it here.
A block hides everything regardless of contacts and settings.
"""

from __future__ import annotations

from dataclasses import dataclass

from chat_contracts import UserSettings
from chat_contracts.errors import ApiError, ErrorCode, forbidden
from chat_message.store import Store, block_key, pair_key


@dataclass(frozen=True)
class Consent:
    store: Store

    async def blockers_of(self, user_id: str, others: list[str]) -> set[str]:
        """Those of `others` who blocked `user_id`."""
        keys = [block_key(o, user_id) for o in others]
        docs = await self.store.blocks.find(
            {"_id": {"$in": keys}, "active": True}, {"blocker_id": 1}
        ).to_list()
        return {d["blocker_id"] for d in docs}

    async def blocked_either_way(self, user_id: str, others: list[str]) -> set[str]:
        """Those of `others` who blocked `user_id` or whom `user_id` blocked."""
        keys = [block_key(o, user_id) for o in others] + [block_key(user_id, o) for o in others]
        docs = await self.store.blocks.find(
            {"_id": {"$in": keys}, "active": True}, {"blocker_id": 1, "blocked_id": 1}
        ).to_list()
        return {d["blocker_id"] if d["blocked_id"] == user_id else d["blocked_id"] for d in docs}

    async def settings_of(self, user_ids: list[str]) -> dict[str, UserSettings]:
        docs = await self.store.users.find(
            {"_id": {"$in": user_ids}, "settings": {"$exists": True}}, {"settings": 1}
        ).to_list()
        stored = {d["_id"]: UserSettings.model_validate(d["settings"]) for d in docs}
        return {u: stored.get(u, UserSettings()) for u in user_ids}

    async def writers_to(self, user_id: str, others: list[str]) -> set[str]:
        """Those of `others` who have written to `user_id` in their direct conversation."""
        if not others:
            return set()
        pairs = await self.store.direct_pairs.find(
            {"_id": {"$in": [pair_key(o, user_id) for o in others]}}, {"conversation_id": 1}
        ).to_list()
        if not pairs:
            return set()
        conversations = await self.store.conversations.find(
            {"_id": {"$in": [p["conversation_id"] for p in pairs]}},
            {"member_ids": 1, "last_sent": 1},
        ).to_list()
        wanted = set(others)
        return {
            member
            for c in conversations
            for member, seq in (c.get("last_sent") or {}).items()
            if member in wanted and member != user_id and seq > 0
        }

    async def contacts_of(self, user_id: str) -> set[str]:
        """Everyone `user_id` has written to in a direct conversation."""
        docs = await self.store.conversations.find(
            {"member_ids": user_id, "type": "direct", f"last_sent.{user_id}": {"$gt": 0}},
            {"member_ids": 1},
        ).to_list()
        return {m for d in docs for m in d["member_ids"] if m != user_id}

    async def check_direct(self, user_id: str, other_id: str) -> None:
        """A user blocked by `other_id` cannot open a direct conversation with them."""
        if await self.blockers_of(user_id, [other_id]):
            raise forbidden("This user does not accept conversations with you.")

    async def check_invites(self, user_id: str, invitee_ids: list[str]) -> None:
        """`user_id` may add each invitee to a group; else 403 naming every refused one."""
        if not invitee_ids:
            return
        refused = await self.blockers_of(user_id, invitee_ids)
        settings = await self.settings_of(invitee_ids)
        contacts_only = [
            u
            for u in invitee_ids
            if settings[u].group_invites_from == "contacts" and u not in refused
        ]
        if contacts_only:
            refused |= set(contacts_only) - await self.writers_to(user_id, contacts_only)
        if refused:
            raise ApiError(
                ErrorCode.FORBIDDEN,
                "Some of these users cannot be added by you.",
                {"user_ids": sorted(refused)},
            )

    async def presence_audience(self, user_id: str) -> list[str]:
        """Who may see `user_id`'s presence: their contacts, unless they show it to nobody."""
        if (await self.settings_of([user_id]))[user_id].presence_visible_to == "nobody":
            return []
        contacts = await self.contacts_of(user_id)
        hidden = await self.blocked_either_way(user_id, list(contacts))
        return sorted(contacts - hidden)

    async def visible_presence(self, viewer_id: str, user_ids: list[str]) -> list[str]:
        """Of `user_ids`, those whose presence `viewer_id` may see (always their own)."""
        others = sorted(set(user_ids) - {viewer_id})
        settings = await self.settings_of(others)
        shown = [u for u in others if settings[u].presence_visible_to != "nobody"]
        shown_to_viewer = await self.writers_to(viewer_id, shown)
        shown_to_viewer -= await self.blocked_either_way(viewer_id, sorted(shown_to_viewer))
        own = {viewer_id} if viewer_id in user_ids else set()
        return sorted(shown_to_viewer | own)
