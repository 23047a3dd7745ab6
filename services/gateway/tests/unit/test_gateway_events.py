"""Every client event goes through one wrapper: parse, rate limit, handle, answer an ack."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from gateway_fakes import CLIENT_EVENTS, Harness, claims, message_json
from redis.exceptions import ConnectionError as RedisConnectionError

from chat_contracts.errors import ApiError
from chat_gateway.settings import GatewaySettings
from chat_platform.ratelimit import Decision

EVENTS = CLIENT_EVENTS


def error_of(ack: Any, code: str) -> dict[str, Any]:
    assert ack["ok"] is False, ack
    assert set(ack) == {"ok", "error"}, ack
    assert ack["error"]["code"] == code, ack
    assert ack["error"]["message"], ack
    return dict(ack["error"])


@pytest.mark.parametrize("event", EVENTS)
@pytest.mark.parametrize(
    "args",
    [
        pytest.param((), id="no payload"),
        pytest.param(({}, {}), id="two payloads"),
        pytest.param(("text",), id="a string"),
        pytest.param(([1],), id="a list"),
        pytest.param((None,), id="null"),
        pytest.param((b"\x00",), id="bytes"),
        pytest.param(({"x": b"\x00"},), id="bytes inside"),
        pytest.param(({"surprise": 1},), id="unknown field"),
    ],
)
async def test_malformed_payloads_get_validation_errors_before_anything_else(
    event: str, args: tuple[Any, ...]
) -> None:
    h = Harness()
    h.connect("s1", "u1")
    error_of(await h.event(event, "s1", *args), "validation_error")
    # Nothing was asked of the message service, and no rate-limit token was spent.
    assert h.commands.calls == []
    assert h.buckets.taken == []


async def test_payloads_over_the_limit_are_refused_with_the_limit() -> None:
    h = Harness(max_event_bytes=120)
    h.connect("s1", "u1")
    ack = await h.event("typing", "s1", {"conversation_id": "c" * 200, "is_typing": True})
    assert error_of(ack, "payload_too_large")["details"] == {"max_bytes": 120}
    # Just under the limit, the same shape is parsed (and fails on its own merits).
    ack = await h.event("typing", "s1", {"conversation_id": "c" * 65, "is_typing": True})
    assert error_of(ack, "validation_error")["details"]["fields"][0]["field"] == "conversation_id"


async def test_validation_details_name_the_field_without_echoing_the_input() -> None:
    h = Harness()
    h.connect("s1", "u1")
    secret = "hunter2-hunter2"
    ack = await h.event("auth:refresh", "s1", {"token": 12345, "note": secret})
    error = error_of(ack, "validation_error")
    fields = {f["field"] for f in error["details"]["fields"]}
    assert fields == {"token", "note"}
    assert secret not in str(ack)


async def test_events_from_an_unknown_socket_are_unauthorized() -> None:
    h = Harness()
    ack = await h.event("sync", "ghost", {"cursors": {}})
    error_of(ack, "unauthorized")
    assert h.commands.calls == []


async def test_a_rate_limited_event_says_when_to_retry_in_whole_seconds() -> None:
    h = Harness(rate_send="1/2")
    h.connect("s1", "u1")
    h.buckets.decision = Decision(False, 0.2)
    ack = await h.event(
        "message:send", "s1", {"conversation_id": "c1", "client_msg_id": "m1", "text": "hi"}
    )
    assert error_of(ack, "rate_limited")["details"] == {"retry_after": 1}
    assert h.commands.calls == []
    (key, rate), *_ = h.buckets.taken
    assert key == "u1:message:send"
    assert (rate.per_second, rate.burst) == (1, 2)


async def test_each_event_kind_has_its_own_bucket_per_user() -> None:
    h = Harness()
    h.connect("s1", "u1")
    h.commands.replies = {
        "conversation.members": {"member_ids": ["u1"]},
        "presence.visible": {"user_ids": []},
    }
    await h.event("typing", "s1", {"conversation_id": "c1", "is_typing": False})
    await h.event("presence:query", "s1", {"user_ids": ["u1"]})
    keys = [key for key, _ in h.buckets.taken]
    assert keys == ["u1:typing", "u1:presence:query"]
    rates = [r for _, r in h.buckets.taken]
    s = h.settings
    assert rates == [s.rate_typing, s.rate_presence_query]


def test_every_client_event_has_a_rate_of_the_actions_it_shares_with_rest_or_its_own() -> None:
    s = GatewaySettings()
    rates = s.budget_rates()
    # Named as REST names the same action, so that one bucket serves both doors.
    assert rates["message:send"] == s.rate_send
    assert rates["sync"] == s.rate_sync
    assert rates["typing"] == s.rate_typing
    assert rates["presence:query"] == s.rate_presence_query
    assert rates["auth:refresh"] == s.rate_auth_refresh
    # Cursor moves (REST's `conversation:read` too) take the default; none is unbounded.
    for event in EVENTS:
        rate = rates.get(event, s.rate_other)
        assert 0 < rate.per_second <= 30, (event, rate)
        assert 1 <= rate.burst <= 100, (event, rate)
    # The expensive ones are well below the default.
    for event in ("sync", "presence:query", "auth:refresh"):
        assert rates[event].per_second < s.rate_other.per_second / 5, event


async def test_every_client_event_spends_the_budget_of_its_own_name() -> None:
    h = Harness()
    h.connect("s1", "u1")
    h.verifier.tokens["t"] = claims("u1", 2e9)
    h.commands.replies = {
        "message.send": {"message": message_json("m1"), "created": True},
        "cursor.move": {"moved": True},
        "conversation.members": {"member_ids": ["u1"]},
        "sync": {
            "conversations": [],
            "removed_conversation_ids": [],
            "synced_at": "2026-01-01T00:00:00Z",
        },
        "presence.visible": {"user_ids": []},
    }
    payloads = {
        "message:send": {"conversation_id": "c1", "client_msg_id": "k1", "text": "hi"},
        "message:delivered": {"conversation_id": "c1", "seq": 1},
        "conversation:read": {"conversation_id": "c1", "seq": 1},
        "typing": {"conversation_id": "c1", "is_typing": True},
        "sync": {"cursors": {}},
        "presence:query": {"user_ids": ["u2"]},
        "auth:refresh": {"token": "t"},
    }
    for event in EVENTS:
        ack = await h.event(event, "s1", payloads[event])
        assert ack["ok"] is True, (event, ack)
    assert [key for key, _ in h.buckets.taken] == [f"u1:{event}" for event in EVENTS]


async def test_command_errors_become_acks_with_their_code_and_details() -> None:
    h = Harness()
    h.connect("s1", "u1")
    h.commands.replies["cursor.move"] = ApiError(
        "validation_error", "seq must be between 0 and 3.", {"fields": [{"field": "seq"}]}
    )
    ack = await h.event("conversation:read", "s1", {"conversation_id": "c1", "seq": 9})
    assert ack == {
        "ok": False,
        "error": {
            "code": "validation_error",
            "message": "seq must be between 0 and 3.",
            "details": {"fields": [{"field": "seq"}]},
        },
    }


async def test_an_unexpected_failure_is_an_internal_error_ack_and_the_socket_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    h = Harness()
    h.connect("s1", "u1")
    h.commands.replies["sync"] = RuntimeError("boom")
    ack = await h.event("sync", "s1", {"cursors": {}})
    assert ack == {"ok": False, "error": {"code": "internal", "message": "Internal error."}}
    assert "boom" not in str(ack)
    h.commands.replies["sync"] = {
        "conversations": [],
        "removed_conversation_ids": [],
        "synced_at": "2026-01-01T00:00:00Z",
    }
    assert (await h.event("sync", "s1", {"cursors": {}}))["ok"] is True
    assert h.realtime.dispatcher.in_flight == 0


async def test_send_passes_the_sender_and_answers_the_stored_message() -> None:
    h = Harness()
    h.connect("s1", "u1")
    stored = message_json("m1", 4)
    h.commands.replies["message.send"] = lambda payload: {"message": stored, "created": True}
    ack = await h.event(
        "message:send", "s1", {"conversation_id": "c1", "client_msg_id": "k1", "text": "hi"}
    )
    assert ack == {"ok": True, "message": stored}
    ((name, payload),) = h.commands.calls
    assert name == "message.send"
    assert payload == {
        "sender_id": "u1",
        "request": {
            "conversation_id": "c1",
            "client_msg_id": "k1",
            "text": "hi",
            "attachment_ids": [],
            "reply_to_id": None,
        },
    }


async def test_sync_forwards_only_what_the_client_gave() -> None:
    h = Harness()
    h.connect("s1", "u1")
    answer = {
        "conversations": [],
        "removed_conversation_ids": ["c9"],
        "synced_at": "2026-01-01T00:00:00.123000Z",
        "complete": True,
    }
    h.commands.replies["sync"] = answer
    ack = await h.event("sync", "s1", {"cursors": {"c1": 3}, "since": "2026-01-01T00:00:00Z"})
    assert ack == {"ok": True, **answer}
    assert h.commands.calls == [
        (
            "sync",
            {
                "user_id": "u1",
                "request": {"cursors": {"c1": 3}, "since": "2026-01-01T00:00:00Z", "limit": None},
            },
        )
    ]


async def test_presence_query_shows_only_whom_the_message_service_allows() -> None:
    h = Harness()
    h.connect("s1", "u1")
    seen = datetime(2026, 1, 1, tzinfo=UTC)
    h.presence.live = {"friend": {"x"}, "hidden": {"y"}, "u1": {"s1"}}
    h.presence.last_seen = {"gone": seen, "hiding": seen}
    h.commands.replies["presence.visible"] = {"user_ids": ["friend", "gone"]}
    asked = ["friend", "hidden", "friend", "u1", "gone", "hiding"]
    ack = await h.event("presence:query", "s1", {"user_ids": asked})
    assert ack == {
        "ok": True,
        "presence": {
            "friend": {"online": True, "last_seen": None},
            # Blocked, `nobody`, or no contact: offline and never seen, whatever the truth.
            "hidden": {"online": False, "last_seen": None},
            "u1": {"online": True, "last_seen": None},
            "gone": {"online": False, "last_seen": seen.isoformat()},
            "hiding": {"online": False, "last_seen": None},
        },
    }
    # Asked once, without repeats and without the caller, whose own presence is theirs to see.
    assert h.commands.calls == [
        (
            "presence.visible",
            {"viewer_id": "u1", "user_ids": ["friend", "hidden", "gone", "hiding"]},
        )
    ]


async def test_presence_query_of_oneself_asks_nobody() -> None:
    h = Harness()
    h.connect("s1", "u1")
    h.presence.live = {"u1": {"s1"}}
    ack = await h.event("presence:query", "s1", {"user_ids": ["u1", "u1"]})
    assert ack == {"ok": True, "presence": {"u1": {"online": True, "last_seen": None}}}
    assert h.commands.calls == []


async def test_unknown_events_answer_not_found_whatever_their_name() -> None:
    h = Harness()
    h.connect("s1", "u1")
    for name in ("nope", 7, None, "x" * 500):
        ack = await h.sio.handlers["*"](name, "s1", {"a": 1})
        error = error_of(ack, "not_found")
        assert len(error["message"]) < 100


async def test_in_flight_events_are_counted_until_answered() -> None:
    h = Harness()
    h.connect("s1", "u1")
    gate = asyncio.Event()

    async def slow(payload: dict[str, Any]) -> dict[str, Any]:
        await gate.wait()
        return {"moved": True}

    h.commands.replies["cursor.move"] = lambda payload: slow(payload)
    task = asyncio.create_task(
        h.event("message:delivered", "s1", {"conversation_id": "c1", "seq": 1})
    )
    await asyncio.sleep(0.01)
    assert h.realtime.dispatcher.in_flight == 1
    assert not h.realtime.dispatcher.idle.is_set()
    gate.set()
    assert await task == {"ok": True}
    assert h.realtime.dispatcher.in_flight == 0
    assert h.realtime.dispatcher.idle.is_set()


async def test_without_redis_sends_go_through_unlimited_and_presence_is_unavailable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    h = Harness()
    h.connect("s1", "u1")
    h.buckets.error = RedisConnectionError("Connection closed by server.")
    h.presence.error = RedisConnectionError("Connection closed by server.")
    h.commands.replies = {
        "message.send": {"message": message_json("m1"), "created": True},
        "presence.visible": {"user_ids": ["u2"]},
    }
    for n in range(3):
        ack = await h.event(
            "message:send", "s1", {"conversation_id": "c1", "client_msg_id": f"k{n}", "text": "x"}
        )
        assert ack == {"ok": True, "message": message_json("m1")}
    ack = await h.event("presence:query", "s1", {"user_ids": ["u2"]})
    assert error_of(ack, "unavailable")
    # Said once, without a traceback, however many events met the outage.
    warnings = [r for r in caplog.records if r.getMessage() == "redis unavailable"]
    assert len(warnings) == 1
    assert warnings[0].exc_info is None


async def test_sends_waiting_are_bounded_per_socket_and_in_all_and_past_it_refused_at_once() -> (
    None
):
    h = Harness(max_sends_per_socket=2, max_sends_in_flight=3)
    h.connect("s1", "u1")
    h.connect("s2", "u2")
    gate = asyncio.Event()

    async def slow(payload: dict[str, Any]) -> dict[str, Any]:
        await gate.wait()
        return {"message": message_json(payload["request"]["client_msg_id"]), "created": True}

    h.commands.replies["message.send"] = slow

    def send(sid: str, key: str) -> asyncio.Task[Any]:
        body = {"conversation_id": "c1", "client_msg_id": key, "text": "x"}
        return asyncio.create_task(h.event("message:send", sid, body))

    waiting = [send("s1", "a"), send("s1", "b")]
    await asyncio.sleep(0)
    over_socket = await send("s1", "c")
    waiting.append(send("s2", "d"))
    await asyncio.sleep(0)
    over_all = await send("s2", "e")
    for refused in (over_socket, over_all):
        assert refused["ok"] is False
        assert refused["error"]["code"] == "unavailable"
        assert refused["error"]["details"] == {"retry_after": 1}
    # Only one of s1's sends reached the message service: the other waits its turn.
    assert [p["request"]["client_msg_id"] for _, p in h.commands.calls] == ["a", "d"]
    gate.set()
    answered = await asyncio.gather(*waiting)
    assert [a["message"]["id"] for a in answered] == ["a", "b", "d"]
    assert h.realtime.sends.waiting == 0
    assert h.realtime.sends.waiting_by_sid == {}
    assert (await send("s1", "f"))["ok"] is True
