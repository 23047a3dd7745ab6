"""Defaults of the message service's settings that the contract fixes."""

from __future__ import annotations

import pytest

from chat_message.settings import MessageSettings


def test_the_message_service_has_a_database_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MONGODB_DB", raising=False)
    assert MessageSettings().mongodb_db == "chat_message"


def test_rest_only_actions_have_budgets_and_sends_share_the_sockets() -> None:
    settings = MessageSettings()
    rates = settings.budget_rates()
    for action in (
        "message:send",
        "message:edit",
        "message:delete",
        "conversation:create",
        "conversation:members",
        "attachment:upload",
        "messages:history",
        "sync",
    ):
        assert action in rates
    assert rates["message:send"].burst == settings.rate_send.burst
