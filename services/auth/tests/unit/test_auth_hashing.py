"""How many password hashes run at once, and what happens to the one more."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from chat_auth.hashing import PasswordHashing, concurrent_hashes, memory_limit_bytes
from chat_contracts import ErrorCode
from chat_contracts.errors import ApiError

MIB = 1024 * 1024


def test_cgroup_limit_is_read_first(tmp_path: Path) -> None:
    v2, v1 = tmp_path / "memory.max", tmp_path / "limit_in_bytes"
    v2.write_text("max\n")
    v1.write_text(f"{512 * MIB}\n")
    assert memory_limit_bytes((str(v2), str(v1))) == 512 * MIB
    v2.write_text(f"{256 * MIB}\n")
    assert memory_limit_bytes((str(v2), str(v1))) == 256 * MIB


def test_without_a_cgroup_limit_the_physical_memory_counts(tmp_path: Path) -> None:
    (tmp_path / "v1").write_text(str(1 << 62))  # cgroup v1's way of saying "no limit"
    physical = memory_limit_bytes((str(tmp_path / "missing"), str(tmp_path / "v1")))
    assert physical is not None
    assert physical > 64 * MIB


@pytest.mark.parametrize(
    ("configured", "memory", "expected"),
    [
        (0, 512 * MIB, 4),  # half of 512 MiB holds four 64 MiB hashes
        (0, 100 * MIB, 1),  # at least one
        (0, None, 1),
        (3, 8192 * MIB, 3),  # a configured bound wins
    ],
)
def test_slots_follow_the_memory(configured: int, memory: int | None, expected: int) -> None:
    assert concurrent_hashes(configured, memory, 0.5, 64 * MIB) == expected


async def test_beyond_the_slots_a_hash_is_refused_at_once_and_slots_come_back() -> None:
    hashing = PasswordHashing(PasswordHasher(memory_cost=8 * 1024, time_cost=1), slots=2)
    results = await asyncio.gather(
        *(hashing.hash(f"password-{i}") for i in range(6)), return_exceptions=True
    )
    done = [r for r in results if isinstance(r, str)]
    refused = [r for r in results if isinstance(r, ApiError)]
    assert len(done) == 2
    assert len(refused) == 4
    assert all(r.code is ErrorCode.UNAVAILABLE and r.details == {"retry_after": 1} for r in refused)
    # Once the hashes ended their slots are free again.
    await asyncio.sleep(0.05)
    assert await hashing.verify(done[0], "password-0") or await hashing.verify(
        done[0], "password-1"
    )
    assert not await hashing.verify(done[0], "wrong")
    assert not await hashing.verify("not a hash", "wrong")
    hashing.close()
