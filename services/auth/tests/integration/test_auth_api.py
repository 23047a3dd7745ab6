"""Black-box tests of the auth service: the real `chat-auth` process over HTTP.

Everything here goes through the public API (CONTRACT §2-§3), except that the
service's database is read to prove what was (not) stored, and the events
exchange is watched to see `user.registered` go out.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_private_key,
)
from pymongo.asynchronous.database import AsyncDatabase

from chat_contracts import Envelope, UserRegistered
from chat_platform.jwt import JwksKeys, TokenVerifier, public_jwk
from chat_testkit import ServiceProcess, eventually
from chat_testkit.amqp import Rabbit
from chat_testkit.contract import assert_error
from chat_testkit.tokens import access_claims, encode, hs256

Database = AsyncDatabase[dict[str, Any]]
PASSWORD = "correct horse battery"
SESSION_KEYS = {"user", "access_token", "refresh_token", "token_type", "expires_in"}
USER_KEYS = {"id", "username", "display_name", "created_at"}


def unique_name(prefix: str = "u") -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_no_secret(response: httpx.Response, password: str = PASSWORD) -> None:
    assert "argon2" not in response.text
    assert "password" not in response.text
    assert password not in response.text


def assert_session(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == SESSION_KEYS
    assert set(body["user"]) == USER_KEYS
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 15 * 60
    assert_no_secret(response)
    return dict(body)


async def register(
    api: httpx.AsyncClient, username: str | None = None, **fields: Any
) -> httpx.Response:
    body = {"username": username or unique_name(), "password": PASSWORD, **fields}
    return await api.post("/v1/auth/register", json=body)


async def new_session(api: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    return assert_session(await register(api, **fields), 201)


@pytest.fixture(autouse=True)
def service_log_stays_clean(auth_service: ServiceProcess) -> Iterator[None]:
    """Bad input costs an error answer, never a crash: no traceback, no error line in the log."""
    before = len(auth_service.log_text())
    yield
    new_lines = auth_service.log_text()[before:]
    assert "Traceback" not in new_lines, new_lines[-3000:]
    assert '"level": "error"' not in new_lines, new_lines[-3000:]


@pytest_asyncio.fixture(scope="module")
async def member(api: httpx.AsyncClient) -> dict[str, Any]:
    """A registered user whose session the tests of bearer tokens reuse."""
    return await new_session(api)


# --- registration ----------------------------------------------------------------------------


async def test_register_answers_201_with_a_session(
    api: httpx.AsyncClient, auth_db: Database
) -> None:
    username = unique_name("Reg")
    response = await register(
        api, username, email=f"{username}@Example.com", display_name="  Ann Example "
    )
    session = assert_session(response, 201)
    user = session["user"]
    assert user["username"] == username
    assert user["display_name"] == "Ann Example"
    created_at = datetime.fromisoformat(user["created_at"])
    assert created_at.utcoffset() == timedelta(0)
    assert session["access_token"].count(".") == 2
    assert session["refresh_token"]

    stored = await auth_db["users"].find_one({"_id": user["id"]})
    assert stored is not None
    assert stored["password_hash"].startswith("$argon2id$")
    assert PASSWORD not in json.dumps(stored, default=str)
    # What register answered is what later reads answer.
    me = await api.get("/v1/users/me", headers=bearer(session["access_token"]))
    assert me.json() == user


async def test_display_name_defaults_to_the_username(api: httpx.AsyncClient) -> None:
    session = await new_session(api)
    assert session["user"]["display_name"] == session["user"]["username"]


async def test_username_is_unique_ignoring_case(api: httpx.AsyncClient, auth_db: Database) -> None:
    username = unique_name("case")
    await new_session(api, username=username.lower())
    for variant in (username.upper(), username.capitalize(), username.lower()):
        assert_error(await register(api, variant), 409, "username_taken")
    assert await auth_db["users"].count_documents({"username_lower": username.lower()}) == 1


async def test_concurrent_registrations_of_case_variants_create_one_user(
    api: httpx.AsyncClient, auth_db: Database
) -> None:
    base = "race" + uuid.uuid4().hex[:8] + "abcdefgh"
    letters = [i for i, c in enumerate(base) if c.isalpha()][:10]
    variants = [
        "".join(c.upper() if i == letters[n] else c for i, c in enumerate(base)) for n in range(10)
    ]
    assert len(set(variants)) == 10
    responses = await asyncio.gather(*(register(api, v) for v in variants))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * 9, [r.text for r in responses]
    for response in responses:
        if response.status_code == 409:
            assert_error(response, 409, "username_taken")
    assert await auth_db["users"].count_documents({"username_lower": base.lower()}) == 1


async def test_email_is_unique_ignoring_case(api: httpx.AsyncClient, auth_db: Database) -> None:
    email = f"{unique_name('mail')}@example.com"
    await new_session(api, email=email)
    assert_error(await register(api, email=email.upper()), 409, "conflict")
    assert await auth_db["users"].count_documents({"email_lower": email}) == 1
    # Users without an email never clash with each other.
    await new_session(api)
    await new_session(api)


async def test_registration_publishes_user_registered(
    api: httpx.AsyncClient, auth_service: ServiceProcess, auth_db: Database, amqp_url: str
) -> None:
    connection = await aio_pika.connect_robust(amqp_url)
    try:
        rabbit = Rabbit(connection, auth_service.env["NAMESPACE"])
        watcher = await rabbit.watch("user.registered")
        session = await new_session(api)
        message = await rabbit.get_from(watcher, timeout=10)
    finally:
        await connection.close()
    envelope = Envelope.model_validate_json(message.body)
    assert envelope.type == "user.registered"
    assert envelope.version == 1
    assert envelope.producer == "auth"
    assert message.message_id == envelope.id
    event = envelope.unwrap()
    assert isinstance(event, UserRegistered)
    assert event.user.model_dump(mode="json") == session["user"]
    assert "argon2" not in message.body.decode()

    # Published after the commit, so nothing is left for the relay (deleted in bulk, shortly).
    async def outbox_empty() -> bool:
        return await auth_db["outbox"].count_documents({"envelopes.id": envelope.id}) == 0

    await eventually(outbox_empty, timeout=5, message="published event removed from the outbox")


# --- login -----------------------------------------------------------------------------------


async def test_login_by_username_or_email_in_any_case(api: httpx.AsyncClient) -> None:
    username = unique_name("Login")
    email = f"{username}@example.com"
    user = (await new_session(api, username=username, email=email))["user"]
    for login in (username, username.lower(), username.upper(), email, email.upper()):
        response = await api.post("/v1/auth/login", json={"username": login, "password": PASSWORD})
        session = assert_session(response)
        assert session["user"] == user
        me = await api.get("/v1/users/me", headers=bearer(session["access_token"]))
        assert me.json()["id"] == user["id"]


async def test_unknown_user_and_wrong_password_get_the_same_answer(
    api: httpx.AsyncClient,
) -> None:
    known = (await new_session(api))["user"]["username"]
    wrong_password = await api.post(
        "/v1/auth/login", json={"username": known, "password": "not the password"}
    )
    unknown_user = await api.post(
        "/v1/auth/login", json={"username": unique_name("ghost"), "password": PASSWORD}
    )
    unknown_email = await api.post(
        "/v1/auth/login", json={"username": "ghost@example.com", "password": PASSWORD}
    )
    assert_error(wrong_password, 401, "invalid_credentials")
    assert wrong_password.json() == unknown_user.json() == unknown_email.json()
    assert wrong_password.status_code == unknown_user.status_code == unknown_email.status_code


async def test_repeated_failures_for_one_username_are_throttled(api: httpx.AsyncClient) -> None:
    username = (await new_session(api))["user"]["username"]
    wrong = {"username": username, "password": "guess-guess"}
    for _ in range(5):
        assert_error(await api.post("/v1/auth/login", json=wrong), 401, "invalid_credentials")

    throttled = await api.post("/v1/auth/login", json=wrong)
    error = assert_error(throttled, 429, "rate_limited")
    retry_after = error["details"]["retry_after"]
    assert isinstance(retry_after, int)
    assert 1 <= retry_after <= 15 * 60
    assert throttled.headers["retry-after"] == str(retry_after)
    # The right password does not get through either while throttled, in any case spelling.
    right = {"username": username.upper(), "password": PASSWORD}
    assert_error(await api.post("/v1/auth/login", json=right), 429, "rate_limited")

    other = (await new_session(api))["user"]["username"]
    other_login = await api.post("/v1/auth/login", json={"username": other, "password": PASSWORD})
    assert_session(other_login)


async def test_successful_login_resets_the_failure_count(api: httpx.AsyncClient) -> None:
    username = (await new_session(api))["user"]["username"]
    wrong = {"username": username, "password": "guess-guess"}
    right = {"username": username, "password": PASSWORD}
    for _ in range(4):
        assert_error(await api.post("/v1/auth/login", json=wrong), 401, "invalid_credentials")
    assert_session(await api.post("/v1/auth/login", json=right))
    for _ in range(4):
        assert_error(await api.post("/v1/auth/login", json=wrong), 401, "invalid_credentials")
    assert_session(await api.post("/v1/auth/login", json=right))


# --- refresh and logout ----------------------------------------------------------------------


async def refresh(api: httpx.AsyncClient, token: str) -> httpx.Response:
    return await api.post("/v1/auth/refresh", json={"refresh_token": token})


async def test_refresh_rotates_the_pair(api: httpx.AsyncClient) -> None:
    first = await new_session(api)
    second = assert_session(await refresh(api, first["refresh_token"]))
    assert second["user"] == first["user"]
    assert second["refresh_token"] != first["refresh_token"]
    me = await api.get("/v1/users/me", headers=bearer(second["access_token"]))
    assert me.json()["id"] == first["user"]["id"]
    third = assert_session(await refresh(api, second["refresh_token"]))
    assert third["refresh_token"] not in {first["refresh_token"], second["refresh_token"]}
    assert_error(await refresh(api, first["refresh_token"]), 401, "unauthorized")


async def test_reusing_a_rotated_token_revokes_the_whole_login(api: httpx.AsyncClient) -> None:
    stolen = await new_session(api)
    other_device = assert_session(
        await api.post(
            "/v1/auth/login",
            json={"username": stolen["user"]["username"], "password": PASSWORD},
        )
    )
    rotated = assert_session(await refresh(api, stolen["refresh_token"]))

    assert_error(await refresh(api, stolen["refresh_token"]), 401, "unauthorized")
    # The replay means the token leaked: its newest successor stops working as well.
    assert_error(await refresh(api, rotated["refresh_token"]), 401, "unauthorized")
    # Another login of the same user is another family, untouched.
    assert_session(await refresh(api, other_device["refresh_token"]))


async def test_logout_ends_the_login(api: httpx.AsyncClient) -> None:
    session = await new_session(api)
    rotated = assert_session(await refresh(api, session["refresh_token"]))
    response = await api.post("/v1/auth/logout", json={"refresh_token": rotated["refresh_token"]})
    assert response.status_code == 204
    assert response.content == b""
    assert_error(await refresh(api, rotated["refresh_token"]), 401, "unauthorized")
    # Logging out twice, or with a token nobody issued, is still a quiet 204.
    again = await api.post("/v1/auth/logout", json={"refresh_token": rotated["refresh_token"]})
    assert again.status_code == 204
    unknown = await api.post("/v1/auth/logout", json={"refresh_token": "never-issued"})
    assert unknown.status_code == 204


async def test_unknown_refresh_token_is_refused(api: httpx.AsyncClient) -> None:
    assert_error(await refresh(api, "x" * 43), 401, "unauthorized")


# --- users -----------------------------------------------------------------------------------


async def test_me_and_user_by_id(api: httpx.AsyncClient, member: dict[str, Any]) -> None:
    other = (await new_session(api))["user"]
    headers = bearer(member["access_token"])
    me = await api.get("/v1/users/me", headers=headers)
    assert me.status_code == 200
    assert me.json() == member["user"]
    found = await api.get(f"/v1/users/{other['id']}", headers=headers)
    assert found.status_code == 200
    assert found.json() == other
    assert_no_secret(found)
    for missing in ("0" * 24, "no-such-user", "x" * 500):
        assert_error(await api.get(f"/v1/users/{missing}", headers=headers), 404, "not_found")


async def test_search_by_username_prefix(api: httpx.AsyncClient, member: dict[str, Any]) -> None:
    prefix = unique_name("find")
    names = [f"{prefix}_c", f"{prefix.upper()}_a", f"{prefix}.b"]
    for name in names:
        await new_session(api, username=name)
    await new_session(api, username=unique_name("elsewhere"))
    headers = bearer(member["access_token"])

    for query in (prefix, prefix.upper()):
        response = await api.get("/v1/users", params={"q": query}, headers=headers)
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"items"}
        # Ordered by username ignoring case.
        assert [u["username"] for u in body["items"]] == [names[2], names[1], names[0]]
        assert all(set(u) == USER_KEYS for u in body["items"])
        assert_no_secret(response)

    limited = await api.get("/v1/users", params={"q": prefix, "limit": 2}, headers=headers)
    assert len(limited.json()["items"]) == 2
    exact = await api.get("/v1/users", params={"q": f"{prefix}.b"}, headers=headers)
    assert [u["username"] for u in exact.json()["items"]] == [names[2]]
    # `.` is a literal in a username, not a regex wildcard.
    dot = await api.get("/v1/users", params={"q": f"{prefix}._"}, headers=headers)
    assert dot.json() == {"items": []}


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"q": ""},
        {"q": "a" * 33},
        {"q": "a b"},
        {"q": ".*"},
        {"q": "^a"},
        {"q": "a", "limit": 0},
        {"q": "a", "limit": 201},
        {"q": "a", "limit": -1},
        {"q": "a", "limit": "ten"},
    ],
    ids=lambda p: json.dumps(p),
)
async def test_search_refuses_bad_queries(
    params: dict[str, Any], api: httpx.AsyncClient, member: dict[str, Any]
) -> None:
    response = await api.get("/v1/users", params=params, headers=bearer(member["access_token"]))
    assert_error(response, 422, "validation_error")


async def test_search_limit_bounds_are_accepted(
    api: httpx.AsyncClient, member: dict[str, Any]
) -> None:
    headers = bearer(member["access_token"])
    for limit in (1, 200):
        response = await api.get("/v1/users", params={"q": "u", "limit": limit}, headers=headers)
        assert response.status_code == 200
        assert len(response.json()["items"]) <= limit


# --- JWKS, health, metrics -------------------------------------------------------------------


async def test_jwks_verifies_issued_access_tokens(
    api: httpx.AsyncClient, auth_service: ServiceProcess
) -> None:
    response = await api.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert "max-age" in response.headers["cache-control"]
    keys = response.json()["keys"]
    assert [(k["kty"], k["crv"], k["alg"]) for k in keys] == [("OKP", "Ed25519", "EdDSA")]
    assert all("d" not in k for k in keys), "a private key component is published"

    session = await new_session(api)
    async with httpx.AsyncClient() as client:
        verifier = TokenVerifier(
            JwksKeys(f"{auth_service.url}/.well-known/jwks.json", client),
            issuer="chat-auth",
            audience="chat",
        )
        claims = await verifier.verify(session["access_token"])
    assert claims.sub == session["user"]["id"]
    assert claims.exp - claims.iat == 15 * 60


async def test_health_readiness_and_metrics(api: httpx.AsyncClient) -> None:
    alive = await api.get("/healthz")
    assert (alive.status_code, alive.json()) == (200, {"status": "ok"})
    ready = await api.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": ["mongodb", "rabbitmq", "redis"]}

    await api.post("/v1/auth/login", json={})
    metrics = await api.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    assert (
        'chat_auth_http_request_duration_seconds_count{method="POST",route="/v1/auth/login",status="422"}'
        in metrics.text
    )


async def test_unknown_paths_and_methods_take_the_error_shape(api: httpx.AsyncClient) -> None:
    assert_error(await api.get("/v1/nothing-here"), 404, "not_found")
    assert_error(await api.get("/v1/auth/register"), 405, "method_not_allowed")


# --- bad input -------------------------------------------------------------------------------


async def stored_counts(db: Database) -> tuple[int, int]:
    # The outbox is not counted: its events are only staged with a user, in one
    # transaction, and published ones leave it asynchronously.
    return (
        await db["users"].count_documents({}),
        await db["refresh_tokens"].count_documents({}),
    )


VALID_NAME = "validname"

REGISTER_BODIES: dict[str, Any] = {
    "empty-object": {},
    "missing-password": {"username": VALID_NAME},
    "missing-username": {"password": PASSWORD},
    "unknown-field": {"username": VALID_NAME, "password": PASSWORD, "is_admin": True},
    "password-hash-field": {"username": VALID_NAME, "password": PASSWORD, "password_hash": "x"},
    "username-number": {"username": 12345, "password": PASSWORD},
    "username-null": {"username": None, "password": PASSWORD},
    "username-list": {"username": [VALID_NAME], "password": PASSWORD},
    "username-operator": {"username": {"$gt": ""}, "password": PASSWORD},
    "password-operator": {"username": VALID_NAME, "password": {"$ne": None}},
    "both-operators": {"username": {"$regex": ".*"}, "password": {"$gt": ""}},
    "password-number": {"username": VALID_NAME, "password": 12345678},
    "password-bool": {"username": VALID_NAME, "password": True},
    "username-empty": {"username": "", "password": PASSWORD},
    "password-empty": {"username": VALID_NAME, "password": ""},
    "username-short": {"username": "ab", "password": PASSWORD},
    "password-short": {"username": VALID_NAME, "password": "seven77"},
    "username-huge": {"username": "a" * 30_000, "password": PASSWORD},
    "password-huge": {"username": VALID_NAME, "password": "p" * 30_000},
    "username-unicode": {"username": "ålice", "password": PASSWORD},
    "username-newline": {"username": "alice\n", "password": PASSWORD},
    "username-dollar": {"username": "$where", "password": PASSWORD},
    "email-invalid": {"username": VALID_NAME, "password": PASSWORD, "email": "nope"},
    "email-operator": {"username": VALID_NAME, "password": PASSWORD, "email": {"$exists": 1}},
    "display-name-blank": {"username": VALID_NAME, "password": PASSWORD, "display_name": "  "},
    "display-name-huge": {"username": VALID_NAME, "password": PASSWORD, "display_name": "d" * 999},
    "array": [VALID_NAME, PASSWORD],
    "string": "username=validname",
    "number": 42,
    "null": None,
}

LOGIN_BODIES: dict[str, Any] = {
    "empty-object": {},
    "missing-password": {"username": VALID_NAME},
    "unknown-field": {"username": VALID_NAME, "password": PASSWORD, "remember_me": True},
    "username-operator": {"username": {"$gt": ""}, "password": PASSWORD},
    "password-operator": {"username": VALID_NAME, "password": {"$gt": ""}},
    "username-number": {"username": 1, "password": PASSWORD},
    "password-list": {"username": VALID_NAME, "password": [PASSWORD]},
    "username-empty": {"username": "", "password": PASSWORD},
    "password-empty": {"username": VALID_NAME, "password": ""},
    "username-huge": {"username": "u" * 30_000, "password": PASSWORD},
    "password-huge": {"username": VALID_NAME, "password": "p" * 30_000},
    "array": [],
    "null": None,
}

TOKEN_BODIES: dict[str, Any] = {
    "empty-object": {},
    "token-operator": {"refresh_token": {"$ne": None}},
    "token-number": {"refresh_token": 42},
    "token-null": {"refresh_token": None},
    "token-empty": {"refresh_token": ""},
    "token-huge": {"refresh_token": "t" * 30_000},
    "unknown-field": {"refresh_token": "abc", "user_id": "u1"},
    "array": ["abc"],
}

JSON_CASES = [
    (path, name, body)
    for path, bodies in (
        ("/v1/auth/register", REGISTER_BODIES),
        ("/v1/auth/login", LOGIN_BODIES),
        ("/v1/auth/refresh", TOKEN_BODIES),
        ("/v1/auth/logout", TOKEN_BODIES),
    )
    for name, body in bodies.items()
]


@pytest.mark.parametrize(
    ("path", "body"),
    [(path, body) for path, _, body in JSON_CASES],
    ids=[f"{path.rsplit('/', 1)[1]}-{name}" for path, name, _ in JSON_CASES],
)
async def test_bad_json_bodies_are_validation_errors_and_store_nothing(
    path: str, body: Any, api: httpx.AsyncClient, auth_db: Database
) -> None:
    before = await stored_counts(auth_db)
    response = await api.post(path, json=body)
    assert_error(response, 422, "validation_error")
    assert PASSWORD not in response.text
    assert "$gt" not in response.text
    assert await stored_counts(auth_db) == before


RAW_BODIES = {
    "not-json": (b"username=alice&password=secret", "application/json"),
    "truncated-json": (b'{"username": "alice", "password": ', "application/json"),
    "invalid-utf8": (b'{"username": "\xff\xfe", "password": "correct horse"}', "application/json"),
    "binary": (bytes(range(256)), "application/octet-stream"),
    "empty": (b"", "application/json"),
    "form": (b"username=alice&password=correct+horse", "application/x-www-form-urlencoded"),
    "text": (b'{"username": "alice", "password": "correct horse"}', "text/plain"),
    "deeply-nested": (b'{"username": ' + b"[" * 5000 + b"]" * 5000 + b"}", "application/json"),
}


@pytest.mark.parametrize("path", ["/v1/auth/register", "/v1/auth/login", "/v1/auth/refresh"])
@pytest.mark.parametrize("raw", list(RAW_BODIES), ids=list(RAW_BODIES))
async def test_undecodable_bodies_are_validation_errors_and_store_nothing(
    path: str, raw: str, api: httpx.AsyncClient, auth_db: Database
) -> None:
    content, content_type = RAW_BODIES[raw]
    before = await stored_counts(auth_db)
    response = await api.post(path, content=content, headers={"content-type": content_type})
    assert_error(response, 422, "validation_error")
    assert await stored_counts(auth_db) == before


async def _chunked(total: int, size: int = 8192) -> AsyncIterator[bytes]:
    yield b'{"username": "alice", "password": "'
    for _ in range(total // size):
        yield b"p" * size
    yield b'"}'


@pytest.mark.parametrize("path", ["/v1/auth/register", "/v1/auth/login", "/v1/auth/refresh"])
async def test_bodies_over_64_kib_are_refused_with_413(
    path: str, api: httpx.AsyncClient, auth_db: Database
) -> None:
    before = await stored_counts(auth_db)
    padded = {"username": VALID_NAME, "password": PASSWORD, "padding": "x" * (64 * 1024)}
    declared = await api.post(path, json=padded)
    assert_error(declared, 413, "payload_too_large")
    chunked = await api.post(
        path, content=_chunked(256 * 1024), headers={"content-type": "application/json"}
    )
    assert "content-length" not in chunked.request.headers
    assert_error(chunked, 413, "payload_too_large")
    assert await stored_counts(auth_db) == before
    # The service is unharmed and the next request is served normally.
    assert (await api.get("/healthz")).status_code == 200


# --- bearer tokens ---------------------------------------------------------------------------


def service_key(auth_service: ServiceProcess) -> Ed25519PrivateKey:
    key = load_pem_private_key(
        Path(auth_service.env["JWT_PRIVATE_KEY_FILE"]).read_bytes(), password=None
    )
    assert isinstance(key, Ed25519PrivateKey)
    return key


def bad_authorizations(auth_service: ServiceProcess, member: dict[str, Any]) -> dict[str, str]:
    """Authorization headers that must all be refused, each for the user `member`."""
    key = service_key(auth_service)
    kid = public_jwk(key.public_key())["kid"]
    public = key.public_key()
    user_id = member["user"]["id"]
    header = {"alg": "EdDSA", "typ": "JWT", "kid": kid}

    def signed(claims: dict[str, Any], with_key: Ed25519PrivateKey = key) -> str:
        return "Bearer " + encode(header, claims, with_key.sign)

    def hmac(secret: bytes) -> str:
        hs_header = {"alg": "HS256", "typ": "JWT", "kid": kid}
        return "Bearer " + encode(hs_header, access_claims(user_id), hs256(secret))

    stranger = Ed25519PrivateKey.generate()
    stranger_header = {**header, "kid": public_jwk(stranger.public_key())["kid"]}
    return {
        "basic-scheme": "Basic dXNlcjpwYXNz",
        "scheme-only": "Bearer",
        "lowercase-scheme-garbage": "bearer  abc.def.ghi",
        "other-scheme": f"Token {member['access_token']}",
        "garbage": "Bearer not-a-token",
        "three-dots": "Bearer a.b.c",
        "huge": "Bearer " + "a" * 5000,
        "refresh-token": f"Bearer {member['refresh_token']}",
        "expired": signed(access_claims(user_id, ttl=-60)),
        "wrong-audience": signed(access_claims(user_id, audience="other")),
        "wrong-issuer": signed(access_claims(user_id, issuer="evil")),
        "missing-exp": signed({k: v for k, v in access_claims(user_id).items() if k != "exp"}),
        "other-key-our-kid": signed(access_claims(user_id), stranger),
        "other-key-own-kid": "Bearer "
        + encode(stranger_header, access_claims(user_id), stranger.sign),
        "alg-none": "Bearer " + encode({**header, "alg": "none"}, access_claims(user_id), None),
        "hs256-public-pem": hmac(
            public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        ),
        "hs256-public-raw": hmac(public.public_bytes(Encoding.Raw, PublicFormat.Raw)),
        "hs256-jwk-x": hmac(public_jwk(public)["x"].encode()),
    }


BAD_AUTH_NAMES = [
    "missing",
    "basic-scheme",
    "scheme-only",
    "lowercase-scheme-garbage",
    "other-scheme",
    "garbage",
    "three-dots",
    "huge",
    "refresh-token",
    "expired",
    "wrong-audience",
    "wrong-issuer",
    "missing-exp",
    "other-key-our-kid",
    "other-key-own-kid",
    "alg-none",
    "hs256-public-pem",
    "hs256-public-raw",
    "hs256-jwk-x",
]


def test_every_bad_authorization_is_exercised(
    auth_service: ServiceProcess, member: dict[str, Any]
) -> None:
    assert set(BAD_AUTH_NAMES) == {"missing", *bad_authorizations(auth_service, member)}


@pytest.mark.parametrize("name", BAD_AUTH_NAMES)
async def test_bad_bearer_tokens_are_refused_with_401(
    name: str, api: httpx.AsyncClient, auth_service: ServiceProcess, member: dict[str, Any]
) -> None:
    headers = (
        {}
        if name == "missing"
        else {"Authorization": bad_authorizations(auth_service, member)[name]}
    )
    user_id = member["user"]["id"]
    for path, params in (
        ("/v1/users/me", {}),
        (f"/v1/users/{user_id}", {}),
        ("/v1/users", {"q": "u"}),
    ):
        response = await api.get(path, params=params, headers=headers)
        assert_error(response, 401, "unauthorized")
        assert user_id not in response.text


async def test_the_same_claims_signed_by_the_service_are_accepted(
    api: httpx.AsyncClient, auth_service: ServiceProcess, member: dict[str, Any]
) -> None:
    # The control for the refusals above: only the forgery made them fail.
    key = service_key(auth_service)
    header = {"alg": "EdDSA", "typ": "JWT", "kid": public_jwk(key.public_key())["kid"]}
    token = encode(header, access_claims(member["user"]["id"]), key.sign)
    response = await api.get("/v1/users/me", headers=bearer(token))
    assert response.status_code == 200
    assert response.json() == member["user"]
