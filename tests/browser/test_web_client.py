"""The web client in a real browser against the real services.

Two people, each in their own browser context and on a different gateway
instance (so every event crosses the Redis manager), use the page the
gateway serves: register, find each other, chat, and see typing, presence
and receipts as a person would. Screenshots go to test-artifacts/browser/.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from browser_support import (
    DESKTOP,
    PASSWORD,
    PHONE,
    Client,
    OpenClient,
    SocketTap,
    make_png,
    unique_username,
)
from playwright.async_api import FilePayload, expect

from chat_testkit import ChatApi, Stack, eventually
from chat_testkit.private import PrivateRedis

pytestmark = pytest.mark.slow

STATIC_DIR = Path(__file__).resolve().parents[2] / "services/gateway/src/chat_gateway/static"


async def start_direct_chat(client: Client, username: str, display_name: str) -> None:
    page = client.page
    await page.get_by_test_id("user-search").fill(username[:8])
    result = page.locator(f'[data-testid="user-result"][data-username="{username}"]')
    await expect(result).to_be_visible()
    await result.click()
    await expect(page.get_by_test_id("chat-title")).to_have_text(display_name)


async def test_two_people_chat_across_gateways(chat_stack: Stack, open_client: OpenClient) -> None:
    gateway_a, gateway_b = chat_stack.gateways
    alice_name, bob_name = unique_username("alice"), unique_username("bob")
    alice = await open_client(gateway_a.url, "alice", DESKTOP)
    bob = await open_client(gateway_b.url, "bob", PHONE)

    await alice.screenshot("sign-in")
    await alice.register(alice_name, "Alice Liddell")
    await bob.register(bob_name, "Bob Builder")
    await alice.screenshot("empty")

    # Alice finds Bob by username prefix and starts a direct chat.
    await start_direct_chat(alice, bob_name, "Bob Builder")
    await alice.screenshot("new-chat")

    # Her first message reaches Bob's device while he is looking at his list:
    # delivered, not read; his list shows it unread.
    await alice.send("Hello Bob! 👋")
    first = alice.message("Hello Bob!")
    await expect(first.get_by_test_id("message-status")).to_have_attribute(
        "data-status", "delivered"
    )
    bob_row = bob.conversation("Alice Liddell")
    await expect(bob_row.get_by_test_id("unread-badge")).to_have_text("1")
    await expect(bob_row.get_by_test_id("conversation-preview")).to_have_text("Hello Bob! 👋")
    await bob.screenshot("list-unread")
    await alice.screenshot("delivered")

    # Bob opens it (one pane at a time on a phone): Alice sees it read.
    await bob_row.click()
    await expect(bob.page.get_by_test_id("chat-title")).to_have_text("Alice Liddell")
    await expect(bob.message("Hello Bob! 👋")).to_be_visible()
    await expect(bob.page.get_by_test_id("conversation-list")).to_be_hidden()
    await expect(first.get_by_test_id("message-status")).to_have_attribute("data-status", "read")
    await alice.screenshot("read")

    # Bob sees Alice online: she has written to him (CONTRACT §7.5). She sees his presence
    # only once he writes to her, below.
    await expect(bob.page.get_by_test_id("chat-presence")).to_have_text("online")

    # Bob sees Alice typing; it goes when her message arrives.
    await alice.page.get_by_test_id("message-input").press_sequentially("Are you", delay=40)
    typing = bob.page.get_by_test_id("typing-indicator")
    await expect(typing).to_be_visible()
    await expect(typing).to_contain_text("Alice is typing")
    await bob.screenshot("typing")
    await alice.page.get_by_test_id("message-input").press_sequentially(" there?", delay=20)
    await alice.page.get_by_test_id("message-input").press("Enter")
    await expect(bob.message("Are you there?")).to_be_visible()
    await expect(typing).to_be_hidden()

    # Bob answers; Alice has the chat open, so his message turns read for him.
    await bob.send("Hi Alice! Yes, here.")
    await expect(alice.message("Hi Alice! Yes, here.")).to_be_visible()
    await expect(alice.page.get_by_test_id("chat-presence")).to_have_text("online")
    reply = bob.message("Hi Alice! Yes, here.")
    await expect(reply.get_by_test_id("message-status")).to_have_attribute("data-status", "read")
    await bob.screenshot("conversation")

    # Every message is on each screen exactly once, in the same order.
    expected = ["Hello Bob! 👋", "Are you there?", "Hi Alice! Yes, here."]
    for client in (alice, bob):
        await expect(client.messages().get_by_test_id("message-text")).to_have_text(expected)

    # Alice edits her first message and deletes her second one.
    await first.hover()
    await first.get_by_test_id("edit-message").click()
    box = alice.page.get_by_test_id("message-input")
    await expect(box).to_have_value("Hello Bob! 👋")
    await box.fill("Hello Bob! 👋 (how are you?)")
    await box.press("Enter")
    edited = bob.message("Hello Bob! 👋 (how are you?)")
    await expect(edited.get_by_test_id("message-edited")).to_be_visible()

    second = alice.message("Are you there?")
    await second.hover()
    await second.get_by_test_id("delete-message").click()
    await alice.page.get_by_test_id("confirm-ok").click()
    await expect(bob.messages().get_by_test_id("message-deleted")).to_have_count(1)
    await expect(bob.message("Are you there?")).to_have_count(0)

    # A picture: uploaded, sent with its id, shown inline on Bob's side.
    await alice.page.get_by_test_id("file-input").set_input_files(
        files=[FilePayload(name="gradient.png", mimeType="image/png", buffer=make_png())]
    )
    chip = alice.page.get_by_test_id("pending-attachment")
    await expect(chip).to_have_attribute("data-status", "ready")
    await alice.send("A picture for you")
    picture = bob.message("A picture for you").get_by_test_id("attachment-image")
    await expect(picture).to_be_visible()
    await bob.page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=attachment-image]')]"
        ".some((img) => img.complete && img.naturalWidth > 0)"
    )

    # A file the service refuses shows its error and is not sent; a text
    # file goes out as a download link.
    file_input = alice.page.get_by_test_id("file-input")
    await file_input.set_input_files(
        files=[
            FilePayload(
                name="tool.bin", mimeType="application/octet-stream", buffer=b"\x00\x01\x02" * 50
            )
        ]
    )
    refused = alice.page.get_by_test_id("pending-attachment").filter(has_text="tool.bin")
    await expect(refused).to_have_attribute("data-status", "error")
    await alice.screenshot("refused-file")
    await refused.get_by_role("button", name="Remove tool.bin").click()
    await expect(alice.page.get_by_test_id("pending-attachment")).to_have_count(0)
    notes = "shopping list\n- apples\n- bread\n"
    await file_input.set_input_files(
        files=[FilePayload(name="notes.txt", mimeType="text/plain", buffer=notes.encode())]
    )
    await expect(alice.page.get_by_test_id("pending-attachment")).to_have_attribute(
        "data-status", "ready"
    )
    await alice.page.get_by_test_id("send-button").click()
    link = bob.page.get_by_test_id("attachment-file").filter(has_text="notes.txt")
    await expect(link).to_be_visible()
    async with bob.page.expect_download() as download_info:
        await link.click()
    download = await download_info.value
    assert download.suggested_filename == "notes.txt"
    saved = Path(await download.path())
    assert await asyncio.to_thread(saved.read_text) == notes

    await alice.screenshot("desktop-conversation")
    await bob.screenshot("phone-conversation")
    await alice.page.emulate_media(color_scheme="dark")
    await alice.screenshot("dark")
    assert alice.errors == [], alice.errors
    assert bob.errors == [], bob.errors


RECORD_CSP_VIOLATIONS = """
    window.cspViolations = [];
    document.addEventListener("securitypolicyviolation", (event) => {
        window.cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
    });
"""


async def test_sign_in_errors_and_session(chat_stack: Stack, open_client: OpenClient) -> None:
    gateway = chat_stack.gateways[0]
    name = unique_username("carol")
    first = await open_client(gateway.url, "carol", DESKTOP)
    await first.register(name, "Carol")

    # Taken username: the contract's message is shown.
    other = await open_client(gateway.url, "dave", DESKTOP)
    page = other.page
    await page.get_by_test_id("auth-tab-register").click()
    await page.get_by_test_id("auth-username").fill(name.upper())
    await page.get_by_test_id("auth-password").fill(PASSWORD)
    await page.get_by_test_id("auth-submit").click()
    error = page.get_by_test_id("auth-error")
    await expect(error).to_be_visible()
    await expect(error).not_to_be_empty()
    await other.screenshot("username-taken")

    # An invalid username: the validation error names the field.
    await page.get_by_test_id("auth-username").fill("x")
    await page.get_by_test_id("auth-submit").click()
    await expect(error).to_contain_text("Username")

    # Wrong password: the contract's invalid_credentials message.
    await other.login(name, "not the password")
    await expect(error).to_have_text("Wrong username or password.")
    await other.screenshot("wrong-password")

    # The right one signs in; a reload keeps the session; signing out ends it.
    await other.login(name)
    await expect(page.get_by_test_id("current-user")).to_contain_text("Carol")
    await other.context.add_init_script(RECORD_CSP_VIOLATIONS)
    await page.reload()
    await expect(page.get_by_test_id("current-user")).to_contain_text("Carol")
    await other.expect_connected()
    # Under the page's Content-Security-Policy every module loaded, and nothing was refused.
    assert await page.evaluate("() => window.cspViolations") == []
    fetched = await page.evaluate(
        "() => performance.getEntriesByType('resource').map((entry) => new URL(entry.name).pathname)"
    )
    assert {f"/static/{module.name}" for module in STATIC_DIR.glob("*.js")} <= set(fetched)
    await page.get_by_test_id("sign-out-button").click()
    await page.get_by_test_id("confirm-ok").click()
    await expect(page.get_by_test_id("auth-form")).to_be_visible()
    assert other.errors == [], other.errors


async def test_reconnect_catches_up_with_missed_messages(
    chat_stack: Stack, open_client: OpenClient
) -> None:
    gateway_a, gateway_b = chat_stack.gateways
    erin_name, frank_name = unique_username("erin"), unique_username("frank")
    erin = await open_client(gateway_a.url, "erin", DESKTOP)
    frank = await open_client(gateway_b.url, "frank", DESKTOP)
    await erin.register(erin_name, "Erin")
    await frank.register(frank_name, "Frank")
    await start_direct_chat(erin, frank_name, "Frank")
    await erin.send("before the outage")
    await frank.conversation("Erin").click()
    await expect(frank.message("before the outage")).to_be_visible()

    # Frank's gateway goes away; Erin keeps writing; Frank's page shows it is
    # reconnecting. When the gateway is back, sync brings what he missed.
    await asyncio.to_thread(gateway_b.kill)
    banner = frank.page.get_by_test_id("connection-banner")
    await expect(banner).to_have_attribute("data-state", "reconnecting")
    missed = [f"missed {n}" for n in range(1, 4)]
    for text in missed:
        await erin.send(text)
    await frank.screenshot("reconnecting")
    await asyncio.to_thread(gateway_b.start)
    await frank.expect_connected(timeout=30_000)  # the client's backoff is up to 5 s
    await expect(frank.messages().get_by_test_id("message-text")).to_have_text(
        ["before the outage", *missed], timeout=20_000
    )
    last = erin.message("missed 3").get_by_test_id("message-status")
    await expect(last).to_have_attribute("data-status", "read")
    await frank.screenshot("caught-up")
    assert frank.errors == [], frank.errors


async def test_failed_send_retries_with_the_same_id_and_shows_once(
    chat_stack: Stack, open_client: OpenClient
) -> None:
    gateway_a, gateway_b = chat_stack.gateways
    interceptor = SocketTap()
    gina_name, hal_name = unique_username("gina"), unique_username("hal")
    gina = await open_client(gateway_a.url, "gina", DESKTOP, socket_route=interceptor.route)
    hal = await open_client(gateway_b.url, "hal", DESKTOP)
    await gina.register(gina_name, "Gina")
    await hal.register(hal_name, "Hal")
    await start_direct_chat(gina, hal_name, "Hal")
    await hal.conversation("Gina").click()

    # The send fails: the message stays on Gina's screen with a retry button.
    interceptor.fail_next()
    await gina.send("second time lucky")
    failed = gina.message("second time lucky")
    await expect(failed).to_have_attribute("data-status", "failed")
    await gina.screenshot("send-failed")
    await expect(hal.message("second time lucky")).to_have_count(0)

    # Retry sends the same client_msg_id; it is stored and shown once.
    await failed.get_by_test_id("retry-button").click()
    await expect(
        gina.message("second time lucky").get_by_test_id("message-status")
    ).to_have_attribute("data-status", "read")
    await expect(hal.message("second time lucky")).to_have_count(1)
    assert len(interceptor.client_msg_ids) == 2
    assert interceptor.client_msg_ids[0] == interceptor.client_msg_ids[1]

    # The acknowledgement is lost but the message was stored: the server's
    # event replaces the failed echo, and nothing is on screen twice.
    interceptor.lose_next_ack()
    await gina.send("ack went missing")
    await expect(
        gina.message("ack went missing").get_by_test_id("message-status")
    ).to_have_attribute("data-status", "read")
    await expect(gina.message("ack went missing")).to_have_count(1)
    await expect(gina.page.get_by_test_id("retry-button")).to_have_count(0)
    await expect(hal.message("ack went missing")).to_have_count(1)
    for client in (gina, hal):
        await expect(client.messages().get_by_test_id("message-text")).to_have_text(
            ["second time lucky", "ack went missing"]
        )
    await gina.screenshot("after-retries")
    assert gina.errors == [], gina.errors


async def test_send_answered_timeout_is_sent_again_with_the_same_id(
    chat_stack: Stack, open_client: OpenClient
) -> None:
    # The gateway's `timeout` answer is played by the test on the page's socket: a
    # slow enough service would make the real one, but only after the gateway's full
    # command deadline, and without saying whether the message was stored first.
    gateway_a, gateway_b = chat_stack.gateways
    tap = SocketTap()
    tess_name, uwe_name = unique_username("tess"), unique_username("uwe")
    tess = await open_client(gateway_a.url, "tess", DESKTOP, socket_route=tap.route)
    uwe = await open_client(gateway_b.url, "uwe", DESKTOP)
    await tess.register(tess_name, "Tess")
    await uwe.register(uwe_name, "Uwe")
    await start_direct_chat(tess, uwe_name, "Uwe")
    await uwe.conversation("Tess").click()

    # Timed out before it was stored: the page sends it again by itself, same id.
    tap.time_out_next(stored=False)
    await tess.send("first try lost")
    status = tess.message("first try lost").get_by_test_id("message-status")
    await expect(status).to_have_attribute("data-status", "read")
    assert len(tap.client_msg_ids) == 2
    assert tap.client_msg_ids[0] == tap.client_msg_ids[1]

    # Stored, though the answer said timeout, and its event never reaches the page:
    # the second attempt's answer is the stored message, shown once.
    tap.hold_back("message:new")
    tap.time_out_next(stored=True)
    await tess.send("first try kept")
    status = tess.message("first try kept").get_by_test_id("message-status")
    await expect(status).to_have_attribute("data-status", "read")
    assert len(tap.client_msg_ids) == 4
    assert tap.client_msg_ids[2] == tap.client_msg_ids[3]
    tap.release()

    expected = ["first try lost", "first try kept"]
    for client in (tess, uwe):
        await expect(client.messages().get_by_test_id("message-text")).to_have_text(expected)
    await expect(tess.page.get_by_test_id("retry-button")).to_have_count(0)
    await tess.screenshot("after-timeouts")
    assert tess.errors == [], tess.errors


async def test_group_chat(chat_stack: Stack, api: ChatApi, open_client: OpenClient) -> None:
    gateway_a, gateway_b = chat_stack.gateways
    ivy_name, jack_name, kim_name = (unique_username(n) for n in ("ivy", "jack", "kim"))
    ivy = await open_client(gateway_a.url, "ivy", DESKTOP)
    jack = await open_client(gateway_b.url, "jack", PHONE)
    await ivy.register(ivy_name, "Ivy")
    await jack.register(jack_name, "Jack")
    await api.register(username=kim_name, display_name="Kim")  # never opens the app

    # Ivy creates a group with Jack and Kim, picked by search.
    page = ivy.page
    await page.get_by_test_id("new-group-button").click()
    dialog = page.get_by_test_id("group-dialog")
    await dialog.get_by_test_id("group-title").fill("Weekend plans")
    for username in (jack_name, kim_name):
        await dialog.get_by_test_id("group-member-search").fill(username)
        await dialog.locator(f'[data-testid="picker-result"][data-username="{username}"]').click()
    await expect(dialog.get_by_test_id("group-selected-member")).to_have_count(2)
    await ivy.screenshot("new-group")
    await dialog.get_by_test_id("group-create").click()
    await expect(page.get_by_test_id("chat-title")).to_have_text("Weekend plans")
    await expect(page.get_by_test_id("chat-presence")).to_contain_text("3 members")

    # Jack's list gets the group live; Kim is offline, so Ivy's message is
    # delivered to Jack only: a single tick.
    await ivy.send("Hiking on Saturday?")
    await expect(jack.conversation("Weekend plans")).to_be_visible()
    await jack.conversation("Weekend plans").click()
    await expect(jack.message("Hiking on Saturday?").get_by_test_id("message-sender")).to_have_text(
        "Ivy"
    )
    # On a phone a tap on a message shows its actions; Jack replies to Ivy's.
    question = jack.message("Hiking on Saturday?")
    await question.get_by_test_id("message-text").click()
    await question.get_by_test_id("reply-message").click()
    await expect(jack.page.get_by_test_id("composer-context")).to_contain_text("Reply to Ivy")
    await jack.send("Count me in")
    reply = ivy.message("Count me in")
    await expect(reply.get_by_test_id("message-sender")).to_have_text("Jack")
    await expect(reply.get_by_test_id("reply-quote")).to_contain_text("Hiking on Saturday?")
    status = ivy.message("Hiking on Saturday?").get_by_test_id("message-status")
    await expect(status).to_have_attribute("data-status", "sent")
    await jack.screenshot("group")
    await ivy.screenshot("group")

    await page.get_by_test_id("chat-info-button").click()
    await expect(page.get_by_test_id("info-dialog").get_by_test_id("member")).to_have_count(3)
    await ivy.screenshot("group-details")
    await page.keyboard.press("Escape")

    # Jack leaves: his list drops the group, Ivy sees two members.
    await jack.page.get_by_test_id("chat-info-button").click()
    await jack.page.get_by_test_id("leave-group").click()
    await jack.page.get_by_test_id("confirm-ok").click()
    await expect(jack.conversation("Weekend plans")).to_have_count(0)
    await expect(page.get_by_test_id("chat-presence")).to_contain_text("2 members")
    assert ivy.errors == [], ivy.errors
    assert jack.errors == [], jack.errors


# 120 REST sends by one user at once: more than a user's send budget allows by default.
@pytest.mark.parametrize("stack_settings", [{"message": {"RATE_SEND": "1000/1000"}}])
async def test_history_loads_when_scrolled_to_the_top(
    chat_stack: Stack, api: ChatApi, open_client: OpenClient
) -> None:
    lena_name, max_name = unique_username("lena"), unique_username("max")
    lena = await api.register(username=lena_name, display_name="Lena")
    writer = await api.register(username=max_name, display_name="Max")
    texts = [f"note {n:03d}" for n in range(1, 121)]
    conversation_id = (await api.direct(writer, lena))["id"]
    for text in texts:
        await api.sent(writer, conversation_id, text)

    client = await open_client(chat_stack.gateways[0].url, "lena", DESKTOP)
    await client.login(lena_name)
    row = client.conversation("Max")
    await expect(row.get_by_test_id("unread-badge")).to_have_text("99+")
    await row.click()

    # The latest page first, ending with the newest message in view.
    shown = client.messages().get_by_test_id("message-text")
    await expect(shown).to_have_count(50)
    await expect(client.message("note 120")).to_be_in_viewport()

    # Scrolled to the top, older pages arrive above without moving what is on screen.
    scroller = client.page.get_by_test_id("message-list")
    for expected_count in (100, 120):
        top = client.messages().first
        top_text = await top.get_by_test_id("message-text").inner_text()
        await scroller.evaluate("el => { el.scrollTop = 0; }")
        await expect(shown).to_have_count(expected_count)
        anchor = client.message(top_text)
        await expect(anchor).to_be_in_viewport()
    await expect(client.page.get_by_test_id("history-status")).to_have_text(
        "This is the beginning of the conversation."
    )
    await expect(shown).to_have_text(texts)
    await client.screenshot("history")
    assert client.errors == [], client.errors


SHORT_TOKENS = {"auth": {"ACCESS_TOKEN_TTL_SECONDS": "8"}, "gateway": {"TOKEN_GRACE_SECONDS": "1"}}


@pytest.mark.parametrize("stack_settings", [SHORT_TOKENS])
async def test_tokens_are_refreshed_without_losing_the_connection(
    chat_stack: Stack, api: ChatApi, open_client: OpenClient
) -> None:
    # Access tokens live 8 s and the gateway closes a socket 1 s after its
    # token expires unless the client sent `auth:refresh`.
    gateway = chat_stack.gateways[0]
    mia_name, ned_name = unique_username("mia"), unique_username("ned")
    await api.register(username=ned_name, display_name="Ned")
    mia = await open_client(gateway.url, "mia", DESKTOP)
    page = mia.page
    await mia.register(mia_name, "Mia")
    await page.evaluate(
        """() => {
            window.bannerStates = [];
            const banner = document.querySelector('[data-testid="connection-banner"]');
            new MutationObserver(() => {
                if (banner.dataset.state !== "connected") window.bannerStates.push(banner.dataset.state);
            }).observe(banner, { attributes: true, attributeFilter: ["data-state"] });
        }"""
    )
    first_token = await page.evaluate("() => localStorage.getItem('chat.access_token')")
    await start_direct_chat(mia, ned_name, "Ned")
    await page.wait_for_timeout(20_000)  # two and a half token lifetimes

    token = await page.evaluate("() => localStorage.getItem('chat.access_token')")
    assert token != first_token
    assert await page.evaluate("() => window.bannerStates") == []
    await mia.send("still connected")
    status = mia.message("still connected").get_by_test_id("message-status")
    await expect(status).to_have_attribute("data-status", "sent")

    # A rejected access token (the refresh token still good): the page
    # refreshes, connects and loads as usual.
    await page.evaluate(
        """() => {
            localStorage.setItem('chat.access_token', 'not-a-valid-token');
            localStorage.setItem('chat.access_expires_at', String(Date.now() + 3600000));
        }"""
    )
    await page.reload()
    await mia.expect_connected()
    await expect(mia.conversation("Ned")).to_be_visible()
    assert mia.errors == [], mia.errors


# Sync then covers only the ten most recent conversations: the rest of the
# list comes from paging through GET /v1/conversations.
SMALL_SYNC = {"message": {"SYNC_MAX_CONVERSATIONS": "10"}}


async def scroll_list_to_end(client: Client) -> None:
    await client.page.get_by_test_id("conversation-list").evaluate(
        "list => { list.parentElement.scrollTop = list.parentElement.scrollHeight; }"
    )


@pytest.mark.parametrize("stack_settings", [SMALL_SYNC])
async def test_conversation_list_pages_in_as_it_scrolls(
    chat_stack: Stack, api: ChatApi, open_client: OpenClient
) -> None:
    olga_name = unique_username("olga")
    olga = await api.register(username=olga_name, display_name="Olga")
    # 55 people each start a chat with Olga: more than one page (50) of the list.
    names = [f"Friend {n:02d}" for n in range(1, 56)]

    async def befriend(name: str) -> None:
        friend = await api.register(username=unique_username("friend"), display_name=name)
        await api.direct(friend, olga)

    for name in names:  # one at a time, so the order of activity is known
        await befriend(name)

    client = await open_client(chat_stack.gateways[0].url, "olga", DESKTOP)
    await client.login(olga_name)
    titles = client.page.get_by_test_id("conversation-title")
    await expect(titles).to_have_count(50)
    await expect(titles.first).to_have_text("Friend 55")
    await scroll_list_to_end(client)
    await expect(titles).to_have_count(55)
    await expect(titles).to_have_text(list(reversed(names)))
    # A reconnect syncs again; conversations beyond the sync's reach stay listed.
    await client.page.reload()
    await client.expect_connected()
    await scroll_list_to_end(client)
    await expect(titles).to_have_count(55)
    await client.page.wait_for_timeout(1000)
    await expect(titles).to_have_count(55)
    assert client.errors == [], client.errors


def test_index_html_preloads_every_module() -> None:
    # app.js alone would load the others too, but a level of imports per round trip.
    html = (STATIC_DIR / "index.html").read_text()
    preloaded = set(re.findall(r'<link rel="modulepreload" href="/static/([\w.-]+\.js)"', html))
    modules = {module.name for module in STATIC_DIR.glob("*.js")}
    assert '<script type="module" src="/static/app.js"></script>' in html
    assert preloaded == modules - {"app.js"}


# Sync answers of at most five messages: catching up takes several.
SMALL_SYNC_ANSWERS = {"message": {"SYNC_MAX_MESSAGES": "5"}}


@pytest.mark.parametrize("stack_settings", [SMALL_SYNC_ANSWERS])
async def test_catching_up_takes_as_many_sync_answers_as_needed(
    chat_stack: Stack, api: ChatApi, open_client: OpenClient
) -> None:
    gateway = chat_stack.gateways[1]
    quinn_name = unique_username("quinn")
    quinn = await api.register(username=quinn_name, display_name="Quinn")
    rosa = await api.register(username=unique_username("rosa"), display_name="Rosa")
    sam = await api.register(username=unique_username("sam"), display_name="Sam")
    with_rosa = (await api.direct(rosa, quinn))["id"]
    with_sam = (await api.direct(sam, quinn))["id"]
    await api.sent(sam, with_sam, "sam 1")
    held = [await api.sent(rosa, with_rosa, f"rosa {n:02d}") for n in range(1, 9)]

    client = await open_client(gateway.url, "quinn", DESKTOP)
    await client.login(quinn_name)
    await client.expect_connected()
    await client.conversation("Rosa").click()
    shown = client.messages().get_by_test_id("message-text")
    await expect(shown).to_have_text([message["text"] for message in held])

    # Quinn's gateway goes away. Meanwhile Tina starts a chat with Quinn, Sam writes
    # twice, then Rosa edits every message Quinn holds and writes ten more. Catching
    # up then takes three answers: Rosa's ten new ones fill the first two, the second
    # leaving the others out; the third has Sam's, Tina's, and room for only some of
    # the edits, so Rosa's history is stale.
    await asyncio.to_thread(gateway.kill)
    banner = client.page.get_by_test_id("connection-banner")
    await expect(banner).to_have_attribute("data-state", "reconnecting")
    tina = await api.register(username=unique_username("tina"), display_name="Tina")
    with_tina = (await api.direct(tina, quinn))["id"]
    for text in ("tina 1", "tina 2"):
        await api.sent(tina, with_tina, text)
    for text in ("sam 2", "sam 3"):
        await api.sent(sam, with_sam, text)
    for message in held:
        await api.edit_message(rosa, with_rosa, message["id"], f"{message['text']} (edited)")
    written = [f"rosa {n:02d}" for n in range(9, 19)]
    for text in written:
        await api.sent(rosa, with_rosa, text)
    await asyncio.to_thread(gateway.start)
    await client.expect_connected(timeout=30_000)

    # Every message once, in order, in its latest state; in both conversations.
    edited = [f"{message['text']} (edited)" for message in held]
    await expect(shown).to_have_text(edited + written, timeout=20_000)
    sam_row = client.conversation("Sam")
    await expect(sam_row.get_by_test_id("conversation-preview")).to_have_text("sam 3")
    await expect(sam_row.get_by_test_id("unread-badge")).to_have_text("3")
    await sam_row.click()
    await expect(shown).to_have_text(["sam 1", "sam 2", "sam 3"])
    await client.conversation("Tina").click()
    await expect(shown).to_have_text(["tina 1", "tina 2"])
    await client.screenshot("caught-up")
    assert client.errors == [], client.errors


async def test_sync_required_brings_what_live_delivery_missed(
    start_stack: Callable[..., Stack],
    web_client_built: Path,
    private_redis: PrivateRedis,
    open_client: OpenClient,
) -> None:
    # The gateway on a Redis of the test's own: restarting it makes the gateway
    # ask its sockets to sync (`sync:required`, reason redis_reconnected).
    stack = start_stack(
        gateways=1,
        extra={
            "gateway": {
                "REDIS_URL": private_redis.url,
                "HEARTBEAT_SECONDS": "0.5",
                "HEARTBEAT_STALE_SECONDS": "3",
            }
        },
    )
    gateway = stack.gateways[0]
    tap = SocketTap()
    async with ChatApi.open(auth_url=stack.auth.url, message_url=stack.message.url) as api:
        walt_name = unique_username("walt")
        walt = await api.register(username=walt_name, display_name="Walt")
        vera = await api.register(username=unique_username("vera"), display_name="Vera")
        conversation_id = (await api.direct(vera, walt))["id"]
        await api.sent(vera, conversation_id, "heard live")

        client = await open_client(gateway.url, "walt", DESKTOP, socket_route=tap.route)
        await client.login(walt_name)
        await client.expect_connected()
        await client.conversation("Vera").click()
        await expect(client.message("heard live")).to_be_visible()

        # Live delivery to Walt's page fails: the event reaches his socket, not the page.
        tap.hold_back("message:new")
        missed = await api.sent(vera, conversation_id, "missed live")
        await eventually(lambda: any(m["id"] == missed["id"] for m in tap.pushed("message:new")))
        await client.page.wait_for_timeout(500)
        await expect(client.message("missed live")).to_have_count(0)

        # Redis restarts under the gateway, which then asks its sockets to sync.
        await asyncio.to_thread(private_redis.kill)
        await eventually(lambda: _not_ready(gateway.url), timeout=15, message="still ready")
        await asyncio.to_thread(private_redis.start)

        # The page syncs on its own, over the connection it had all along.
        shown = client.messages().get_by_test_id("message-text")
        await expect(shown).to_have_text(["heard live", "missed live"], timeout=30_000)
        assert tap.pushed("sync:required") == [{"reason": "redis_reconnected"}]
        assert tap.connections == 1
        await client.screenshot("synced")
        assert client.errors == [], client.errors


async def _not_ready(gateway_url: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=2) as http:
            ready = (await http.get(f"{gateway_url}/readyz")).status_code == 200
    except httpx.HTTPError:
        return True
    if ready:
        await asyncio.sleep(0.2)  # asked again shortly, not in a tight loop
    return not ready
