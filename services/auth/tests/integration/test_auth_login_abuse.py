"""Hostile logins against a real chat-auth: parallel guessing, identifiers, unknown accounts."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import httpx

from chat_testkit.contract import assert_error

PASSWORD = "correct horse battery"
BUDGET = 5  # the default LOGIN_FAILURES_PER_USERNAME


async def register(api: httpx.AsyncClient, email: str | None = None) -> str:
    name = f"l{uuid.uuid4().hex[:12]}"
    body = {"username": name, "password": PASSWORD, **({"email": email} if email else {})}
    response = await api.post("/v1/auth/register", json=body)
    assert response.status_code == 201, response.text
    return name


async def login(api: httpx.AsyncClient, identifier: str, password: str) -> httpx.Response:
    return await api.post("/v1/auth/login", json={"username": identifier, "password": password})


async def test_a_parallel_burst_checks_at_most_the_budget(api: httpx.AsyncClient) -> None:
    username = await register(api)
    answers = await asyncio.gather(*(login(api, username, f"guess-{i:04}") for i in range(40)))
    statuses = Counter(a.status_code for a in answers)
    assert statuses[401] <= BUDGET, statuses
    assert statuses[401] + statuses[429] == 40, statuses
    for answer in answers:
        if answer.status_code == 429:
            assert_error(answer, 429, "rate_limited")
    # The owner is locked out too for the window: the guesses spent the account's budget.
    assert_error(await login(api, username, PASSWORD), 429, "rate_limited")


async def test_username_and_email_spend_one_budget(api: httpx.AsyncClient) -> None:
    email = f"{uuid.uuid4().hex[:10]}@example.com"
    username = await register(api, email)
    for i in range(BUDGET):
        identifier = username if i % 2 else email.upper()
        assert_error(await login(api, identifier, "guess-guess"), 401, "invalid_credentials")
    assert_error(await login(api, username, "guess-guess"), 429, "rate_limited")
    assert_error(await login(api, email, PASSWORD), 429, "rate_limited")


async def test_unknown_identifiers_are_throttled_and_answered_alike(
    api: httpx.AsyncClient,
) -> None:
    ghost = f"ghost{uuid.uuid4().hex[:10]}"
    known = await register(api)
    ghost_answers = [await login(api, ghost, "guess-guess") for _ in range(BUDGET + 1)]
    known_answers = [await login(api, known, "guess-guess") for _ in range(BUDGET + 1)]
    assert [a.status_code for a in ghost_answers] == [401] * BUDGET + [429]
    assert [a.status_code for a in known_answers] == [401] * BUDGET + [429]
    assert ghost_answers[0].json() == known_answers[0].json()
    assert ghost_answers[-1].json()["error"]["code"] == known_answers[-1].json()["error"]["code"]
    # Another unknown identifier has a budget of its own.
    assert_error(await login(api, f"ghost{uuid.uuid4().hex[:10]}", "x"), 401, "invalid_credentials")
