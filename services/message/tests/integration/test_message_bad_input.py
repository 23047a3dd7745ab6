"""Bad input and strangers: each gets the contract's error, nothing is stored, nothing crashes.

Every case runs against one service and one set of conversations; after each,
the stored counts are unchanged, and (`service_log_clean`) the service logged
no traceback and answered no 500.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from chat_platform.jwt import public_jwk
from chat_testkit.api import ChatApi, User
from chat_testkit.contract import assert_error
from chat_testkit.stored import Stored
from chat_testkit.tokens import access_claims, encode, hs256

pytestmark = pytest.mark.usefixtures("service_log_clean")

UNKNOWN_ID = "65a0000000000000000000ff"


@dataclass
class World:
    alice: User
    bob: User
    carol: User
    ids: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    def user(self, name: str) -> User | None:
        if name in self.tokens:
            return User(self.alice.id, "forged", self.tokens[name])
        return {"alice": self.alice, "bob": self.bob, "carol": self.carol, "none": None}[name]

    def fill(self, value: Any) -> Any:
        if isinstance(value, str):
            return value.format(**self.ids)
        if isinstance(value, dict):
            return {k: self.fill(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.fill(v) for v in value]
        return value


def forged_tokens(subject: str, key_file: Path) -> dict[str, str]:
    """Tokens that must all be refused: expired, unsigned, HMAC-signed, signed by a stranger."""
    real_key = load_pem_private_key(key_file.read_bytes(), password=None)
    assert isinstance(real_key, Ed25519PrivateKey)
    real_jwk = public_jwk(real_key.public_key())
    stranger = Ed25519PrivateKey.generate()
    eddsa = {"alg": "EdDSA", "typ": "JWT", "kid": real_jwk["kid"]}
    return {
        "expired": encode(eddsa, access_claims(subject, ttl=-120), real_key.sign),
        "wrong-audience": encode(eddsa, access_claims(subject, audience="other"), real_key.sign),
        "alg-none": encode({"alg": "none", "typ": "JWT"}, access_claims(subject), None),
        "hs256-with-public-key": encode(
            {"alg": "HS256", "typ": "JWT", "kid": real_jwk["kid"]},
            access_claims(subject),
            hs256(real_jwk["x"].encode()),
        ),
        "stranger-key": encode(
            {**eddsa, "kid": public_jwk(stranger.public_key())["kid"]},
            access_claims(subject),
            stranger.sign,
        ),
        "garbage": "not.a.jwt",
    }


@pytest_asyncio.fixture(scope="module")
async def world(api: ChatApi, module_service_env: dict[str, str]) -> World:
    alice, bob, carol, dave = await api.register_many(4)
    w = World(alice, bob, carol)
    group = await api.group(alice, [bob], title="ours")
    direct = await api.direct(alice, bob)
    foreign = await api.direct(carol, dave)
    alices = await api.sent(alice, group["id"], "from alice")
    bobs = await api.sent(bob, group["id"], "from bob")
    used_in_direct = await api.sent(alice, direct["id"], "key used here")
    theirs = await api.sent(carol, foreign["id"], "not for alice")
    w.ids = {
        "alice": alice.id,
        "bob": bob.id,
        "carol": carol.id,
        "dave": dave.id,
        "group": group["id"],
        "direct": direct["id"],
        "foreign": foreign["id"],
        "msg_alice": alices["id"],
        "msg_bob": bobs["id"],
        "msg_foreign": theirs["id"],
        "key_in_direct": used_in_direct["client_msg_id"],
        "unknown": UNKNOWN_ID,
    }
    w.tokens = forged_tokens(alice.id, Path(module_service_env["JWT_PRIVATE_KEY_FILE"]))
    return w


@dataclass(frozen=True)
class Case:
    id: str
    method: str
    path: str
    status: int
    code: str
    user: str = "alice"
    json: Any = None
    content: bytes | None = None
    params: dict[str, Any] | None = None
    headers: dict[str, str] | None = None


SEND = "/v1/conversations/{group}/messages"
EDIT = "/v1/conversations/{group}/messages/{msg_alice}"
READ = "/v1/conversations/{group}/read"
MEMBERS = "/v1/conversations/{group}/members"
JSON = {"Content-Type": "application/json"}


def send(**body: Any) -> dict[str, Any]:
    return {"client_msg_id": "bad-input", **body}


CASES = [
    # --- who is asking ---------------------------------------------------------------------
    Case("no-token", "GET", "/v1/conversations", 401, "unauthorized", user="none"),
    Case("no-token-send", "POST", SEND, 401, "unauthorized", user="none", json=send(text="x")),
    Case("basic-scheme", "GET", "/v1/conversations", 401, "unauthorized", user="none",
         headers={"Authorization": "Basic YWxpY2U6c2VjcmV0"}),
    Case("bearer-without-token", "GET", "/v1/conversations", 401, "unauthorized", user="none",
         headers={"Authorization": "Bearer"}),
    Case("huge-token", "GET", "/v1/conversations", 401, "unauthorized", user="none",
         headers={"Authorization": "Bearer " + "a" * 8000}),
    *(
        Case(f"token-{name}", "POST", SEND, 401, "unauthorized", user=name, json=send(text="x"))
        for name in ("expired", "wrong-audience", "alg-none", "hs256-with-public-key",
                     "stranger-key", "garbage")
    ),
    # --- a stranger learns nothing: 404 whatever exists ---------------------------------------
    Case("stranger-get", "GET", "/v1/conversations/{group}", 404, "not_found", user="carol"),
    Case("stranger-history", "GET", SEND, 404, "not_found", user="carol"),
    Case("stranger-send", "POST", SEND, 404, "not_found", user="carol", json=send(text="hi")),
    Case("stranger-read", "POST", READ, 404, "not_found", user="carol", json={"seq": 1}),
    Case("stranger-edit", "PATCH", EDIT, 404, "not_found", user="carol", json={"text": "x"}),
    Case("stranger-delete", "DELETE", EDIT, 404, "not_found", user="carol"),
    Case("stranger-adds-self", "POST", MEMBERS, 404, "not_found", user="carol",
         json={"user_ids": ["{carol}"]}),
    Case("stranger-removes", "DELETE", MEMBERS + "/{bob}", 404, "not_found", user="carol"),
    # --- unknown, foreign and malformed ids ------------------------------------------------
    Case("unknown-conversation", "GET", "/v1/conversations/{unknown}", 404, "not_found"),
    Case("malformed-conversation", "GET", "/v1/conversations/nope", 404, "not_found"),
    Case("uppercase-conversation", "GET", "/v1/conversations/65A0000000000000000000FF", 404,
         "not_found"),
    Case("long-conversation", "GET", "/v1/conversations/" + "a" * 300, 404, "not_found"),
    Case("operator-conversation", "GET", "/v1/conversations/%7B%22%24ne%22%3A1%7D", 404,
         "not_found"),
    Case("send-unknown-conversation", "POST", "/v1/conversations/{unknown}/messages", 404,
         "not_found", json=send(text="x")),
    Case("send-malformed-conversation", "POST", "/v1/conversations/nope/messages", 404,
         "not_found", json=send(text="x")),
    Case("history-malformed-conversation", "GET", "/v1/conversations/nope/messages", 404,
         "not_found"),
    Case("read-unknown-conversation", "POST", "/v1/conversations/{unknown}/read", 404,
         "not_found", json={"seq": 0}),
    Case("edit-unknown-message", "PATCH", SEND + "/{unknown}", 404, "not_found",
         json={"text": "x"}),
    Case("edit-malformed-message", "PATCH", SEND + "/nope", 404, "not_found", json={"text": "x"}),
    Case("edit-foreign-message", "PATCH", SEND + "/{msg_foreign}", 404, "not_found",
         json={"text": "x"}),
    Case("delete-foreign-message", "DELETE", SEND + "/{msg_foreign}", 404, "not_found"),
    Case("edit-own-message-via-other-conversation", "PATCH",
         "/v1/conversations/{direct}/messages/{msg_alice}", 404, "not_found", json={"text": "x"}),
    Case("members-unknown-conversation", "POST", "/v1/conversations/{unknown}/members", 404,
         "not_found", json={"user_ids": ["{carol}"]}),
    Case("no-such-route", "GET", "/v1/nothing-here", 404, "not_found"),
    Case("wrong-method", "PUT", "/v1/conversations", 405, "method_not_allowed",
         json={"type": "direct"}),
    # --- messages that are not acceptable --------------------------------------------------
    Case("text-over-4000", "POST", SEND, 422, "validation_error", json=send(text="x" * 4001)),
    Case("text-over-4000-code-points", "POST", SEND, 422, "validation_error",
         json=send(text="\U0001f600" * 4001)),
    Case("text-over-the-body-limit", "POST", SEND, 413, "payload_too_large",
         json=send(text="x" * 70_000)),
    Case("no-text-no-attachment", "POST", SEND, 422, "validation_error", json=send()),
    Case("null-text-no-attachment", "POST", SEND, 422, "validation_error",
         json=send(text=None, attachment_ids=[])),
    Case("blank-text", "POST", SEND, 422, "validation_error", json=send(text=" \n\t ")),
    Case("reply-to-foreign-message", "POST", SEND, 422, "validation_error",
         json=send(text="x", reply_to_id="{msg_foreign}")),
    Case("reply-to-unknown-message", "POST", SEND, 422, "validation_error",
         json=send(text="x", reply_to_id="{unknown}")),
    Case("reply-to-malformed-id", "POST", SEND, 422, "validation_error",
         json=send(text="x", reply_to_id="nope")),
    Case("client-msg-id-of-another-conversation", "POST", SEND, 422, "validation_error",
         json={"client_msg_id": "{key_in_direct}", "text": "x"}),
    Case("text-not-a-string", "POST", SEND, 422, "validation_error", json=send(text=123)),
    Case("client-msg-id-missing", "POST", SEND, 422, "validation_error", json={"text": "x"}),
    Case("client-msg-id-empty", "POST", SEND, 422, "validation_error",
         json={"client_msg_id": "", "text": "x"}),
    Case("client-msg-id-too-long", "POST", SEND, 422, "validation_error",
         json={"client_msg_id": "k" * 65, "text": "x"}),
    Case("client-msg-id-a-number", "POST", SEND, 422, "validation_error",
         json={"client_msg_id": 7, "text": "x"}),
    Case("attachment-ids-a-string", "POST", SEND, 422, "validation_error",
         json=send(text="x", attachment_ids="{msg_alice}")),
    Case("attachment-ids-numbers", "POST", SEND, 422, "validation_error",
         json=send(text="x", attachment_ids=[1, 2])),
    Case("unknown-attachment", "POST", SEND, 404, "not_found",
         json=send(text="x", attachment_ids=["{unknown}"])),
    Case("unknown-field", "POST", SEND, 422, "validation_error",
         json=send(text="x", seq=1)),
    Case("sender-id-smuggled", "POST", SEND, 422, "validation_error",
         json=send(text="x", sender_id="{bob}")),
    Case("not-json", "POST", SEND, 422, "validation_error", content=b"text=hello", headers=JSON),
    Case("json-array", "POST", SEND, 422, "validation_error", json=[send(text="x")]),
    Case("json-string", "POST", SEND, 422, "validation_error", json="hello"),
    Case("json-null", "POST", SEND, 422, "validation_error", content=b"null", headers=JSON),
    Case("empty-body", "POST", SEND, 422, "validation_error", content=b"", headers=JSON),
    Case("invalid-utf8", "POST", SEND, 422, "validation_error",
         content=b'{"client_msg_id": "k", "text": "\xff\xfe"}', headers=JSON),
    Case("deeply-nested", "POST", SEND, 422, "validation_error", content=b"[" * 60_000,
         headers=JSON),
    Case("declared-huge-body", "POST", SEND, 413, "payload_too_large",
         content=json.dumps(send(text="x" * 200_000)).encode(), headers=JSON),
    # --- edits ---------------------------------------------------------------------------------
    Case("edit-someone-elses-message", "PATCH", EDIT, 403, "forbidden", user="bob",
         json={"text": "mine now"}),
    Case("delete-someone-elses-message", "DELETE", EDIT, 403, "forbidden", user="bob"),
    Case("edit-text-over-4000", "PATCH", EDIT, 422, "validation_error", json={"text": "x" * 4001}),
    Case("edit-to-empty", "PATCH", EDIT, 422, "validation_error", json={"text": ""}),
    Case("edit-to-null", "PATCH", EDIT, 422, "validation_error", json={"text": None}),
    Case("edit-unknown-field", "PATCH", EDIT, 422, "validation_error",
         json={"text": "x", "deleted": True}),
    Case("edit-not-json", "PATCH", EDIT, 422, "validation_error", content=b"{text", headers=JSON),
    # --- history cursors (the group holds seq 1 and 2) --------------------------------------
    Case("before-seq-negative", "GET", SEND, 422, "validation_error", params={"before_seq": -1}),
    Case("after-seq-negative", "GET", SEND, 422, "validation_error", params={"after_seq": -1}),
    Case("after-seq-beyond-last", "GET", SEND, 422, "validation_error", params={"after_seq": 3}),
    Case("before-seq-beyond-last", "GET", SEND, 422, "validation_error", params={"before_seq": 4}),
    Case("after-seq-huge", "GET", SEND, 422, "validation_error", params={"after_seq": 10**30}),
    Case("both-cursors", "GET", SEND, 422, "validation_error",
         params={"before_seq": 2, "after_seq": 0}),
    Case("after-seq-not-a-number", "GET", SEND, 422, "validation_error",
         params={"after_seq": "abc"}),
    Case("after-seq-a-float", "GET", SEND, 422, "validation_error", params={"after_seq": "1.5"}),
    Case("limit-zero", "GET", SEND, 422, "validation_error", params={"limit": 0}),
    Case("limit-over-200", "GET", SEND, 422, "validation_error", params={"limit": 201}),
    # --- read cursor ------------------------------------------------------------------------
    Case("read-negative", "POST", READ, 422, "validation_error", json={"seq": -1}),
    Case("read-beyond-last", "POST", READ, 422, "validation_error", json={"seq": 3}),
    Case("read-huge", "POST", READ, 422, "validation_error", json={"seq": 10**30}),
    Case("read-as-string", "POST", READ, 422, "validation_error", json={"seq": "2"}),
    Case("read-as-float", "POST", READ, 422, "validation_error", json={"seq": 2.0}),
    Case("read-as-bool", "POST", READ, 422, "validation_error", json={"seq": True}),
    Case("read-missing-seq", "POST", READ, 422, "validation_error", json={}),
    Case("read-unknown-field", "POST", READ, 422, "validation_error",
         json={"seq": 1, "kind": "delivered"}),
    # --- conversations and members ----------------------------------------------------------
    Case("group-duplicate-members", "POST", "/v1/conversations", 422, "validation_error",
         json={"type": "group", "title": "t", "member_ids": ["{bob}", "{bob}"]}),
    Case("group-unknown-member", "POST", "/v1/conversations", 404, "not_found",
         json={"type": "group", "title": "t", "member_ids": ["{bob}", "{unknown}"]}),
    Case("group-malformed-member", "POST", "/v1/conversations", 404, "not_found",
         json={"type": "group", "title": "t", "member_ids": ["nope"]}),
    Case("group-without-title", "POST", "/v1/conversations", 422, "validation_error",
         json={"type": "group", "member_ids": ["{bob}"]}),
    Case("group-blank-title", "POST", "/v1/conversations", 422, "validation_error",
         json={"type": "group", "title": "  ", "member_ids": ["{bob}"]}),
    Case("group-title-too-long", "POST", "/v1/conversations", 422, "validation_error",
         json={"type": "group", "title": "t" * 101, "member_ids": ["{bob}"]}),
    Case("group-members-not-a-list", "POST", "/v1/conversations", 422, "validation_error",
         json={"type": "group", "title": "t", "member_ids": "{bob}"}),
    Case("group-member-a-number", "POST", "/v1/conversations", 422, "validation_error",
         json={"type": "group", "title": "t", "member_ids": [5]}),
    Case("unknown-type", "POST", "/v1/conversations", 422, "validation_error",
         json={"type": "channel", "member_ids": ["{bob}"]}),
    Case("missing-type", "POST", "/v1/conversations", 422, "validation_error",
         json={"member_ids": ["{bob}"]}),
    Case("direct-with-two-others", "POST", "/v1/conversations", 422, "validation_error",
         json={"type": "direct", "member_ids": ["{bob}", "{carol}"]}),
    Case("direct-with-a-title", "POST", "/v1/conversations", 422, "validation_error",
         json={"type": "direct", "title": "t", "member_ids": ["{carol}"]}),
    Case("direct-with-oneself", "POST", "/v1/conversations", 422, "validation_error",
         json={"type": "direct", "member_ids": ["{alice}"]}),
    Case("direct-with-unknown-user", "POST", "/v1/conversations", 404, "not_found",
         json={"type": "direct", "member_ids": ["{unknown}"]}),
    Case("add-to-direct", "POST", "/v1/conversations/{direct}/members", 422, "validation_error",
         json={"user_ids": ["{carol}"]}),
    Case("add-duplicates", "POST", MEMBERS, 422, "validation_error",
         json={"user_ids": ["{carol}", "{carol}"]}),
    Case("add-unknown-user", "POST", MEMBERS, 404, "not_found", json={"user_ids": ["{unknown}"]}),
    Case("add-nobody", "POST", MEMBERS, 422, "validation_error", json={"user_ids": []}),
    Case("add-unknown-field", "POST", MEMBERS, 422, "validation_error",
         json={"user_ids": ["{carol}"], "role": "admin"}),
    Case("remove-non-member", "DELETE", MEMBERS + "/{carol}", 404, "not_found"),
    Case("remove-malformed-user", "DELETE", MEMBERS + "/nope", 404, "not_found"),
    Case("leave-direct", "DELETE", "/v1/conversations/{direct}/members/{alice}", 422,
         "validation_error"),
    Case("list-garbage-cursor", "GET", "/v1/conversations", 422, "validation_error",
         params={"cursor": "garbage!"}),
    Case("list-forged-cursor", "GET", "/v1/conversations", 422, "validation_error",
         params={"cursor": "WyIwMDAxLTAxLTAxVDAwOjAwOjAwKzAxOjAwIiwgIngiXQ=="}),
    Case("list-cursor-too-long", "GET", "/v1/conversations", 422, "validation_error",
         params={"cursor": "a" * 600}),
    Case("list-limit-zero", "GET", "/v1/conversations", 422, "validation_error",
         params={"limit": 0}),
    Case("list-limit-over-200", "GET", "/v1/conversations", 422, "validation_error",
         params={"limit": 201}),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_bad_requests_get_the_contract_error_and_store_nothing(
    api: ChatApi, world: World, stored: Stored, case: Case
) -> None:
    before = stored()
    kwargs: dict[str, Any] = {}
    if case.json is not None:
        kwargs["json"] = world.fill(case.json)
    if case.content is not None:
        kwargs["content"] = case.content
    if case.params is not None:
        kwargs["params"] = world.fill(case.params)
    if case.headers is not None:
        kwargs["headers"] = case.headers
    response = await api.request(
        world.user(case.user), case.method, world.fill(case.path), **kwargs
    )
    assert_error(response, case.status, case.code)
    assert stored() == before


async def test_refused_sends_take_no_seq_and_the_service_still_serves(
    api: ChatApi, world: World
) -> None:
    group = world.ids["group"]
    assert (await api.conversation(world.alice, group))["last_seq"] == 2
    message = await api.sent(world.bob, group, "still here")
    assert message["seq"] == 3
    items = (await api.history(world.alice, group))["items"]
    assert [(m["seq"], m["text"]) for m in items] == [
        (1, "from alice"),
        (2, "from bob"),
        (3, "still here"),
    ]
