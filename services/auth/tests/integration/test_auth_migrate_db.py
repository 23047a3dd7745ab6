"""`chat-auth migrate-db`: auth's data copied out of a shared database, and auth runs on the copy."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from pymongo import MongoClient

from chat_auth.settings import AuthSettings
from chat_testkit import ServiceProcess

PASSWORD = "correct horse battery"


def test_auth_has_a_database_of_its_own_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MONGODB_DB", raising=False)
    assert AuthSettings().mongodb_db == "chat_auth"


@pytest.fixture
def target_db(mongodb_url: str) -> Iterator[str]:
    name = f"test_{uuid.uuid4().hex[:12]}"
    yield name
    client: MongoClient[dict[str, Any]] = MongoClient(mongodb_url)
    client.drop_database(name)
    client.close()


def run_migration(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "chat_auth", "migrate-db", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


async def test_migrated_users_log_in_and_keep_their_blocks(
    start_service: Callable[..., ServiceProcess], service_env: dict[str, str], target_db: str
) -> None:
    shared = start_service("chat-auth")
    async with httpx.AsyncClient(base_url=shared.url, timeout=10) as api:
        names = [f"m{uuid.uuid4().hex[:12]}" for _ in range(2)]
        sessions = []
        for name in names:
            body = {"username": name, "password": PASSWORD}
            response = await api.post("/v1/auth/register", json=body)
            assert response.status_code == 201
            sessions.append(response.json())
        headers = {"Authorization": f"Bearer {sessions[0]['access_token']}"}
        blocked = sessions[1]["user"]["id"]
        assert (await api.put(f"/v1/users/me/blocks/{blocked}", headers=headers)).status_code == 204
    shared.stop()
    # What the message service kept in the shared database stays out of auth's.
    client: MongoClient[dict[str, Any]] = MongoClient(service_env["MONGODB_URL"])
    client[service_env["MONGODB_DB"]]["conversations"].insert_one({"_id": "c1"})
    client[service_env["MONGODB_DB"]]["outbox"].insert_one(
        {"_id": "o1", "envelopes": [{"producer": "message"}]}
    )

    source = service_env["MONGODB_DB"]
    for _ in range(2):  # running it again changes nothing
        done = run_migration(service_env, "--from", source, "--to", target_db)
        assert done.returncode == 0, done.stderr
        assert "users: 2 documents copied" in done.stdout
        assert "blocks: 1 documents copied" in done.stdout
    assert client[target_db]["users"].count_documents({}) == 2
    assert "conversations" not in client[target_db].list_collection_names()
    assert client[target_db]["outbox"].count_documents({}) == 0
    client.close()

    own = start_service("chat-auth", MONGODB_DB=target_db)
    async with httpx.AsyncClient(base_url=own.url, timeout=10) as api:
        login = await api.post("/v1/auth/login", json={"username": names[0], "password": PASSWORD})
        assert login.status_code == 200, login.text
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        listed = await api.get("/v1/users/me/blocks", headers=headers)
        assert [u["id"] for u in listed.json()["items"]] == [blocked]
        refreshed = await api.post(
            "/v1/auth/refresh", json={"refresh_token": sessions[1]["refresh_token"]}
        )
        assert refreshed.status_code == 200, refreshed.text


def test_migrating_a_database_onto_itself_is_refused(service_env: dict[str, str]) -> None:
    db = service_env["MONGODB_DB"]
    done = run_migration(service_env, "--from", db, "--to", db)
    assert done.returncode != 0
    assert "same" in done.stderr
