"""Broker, Consumer and commands on a real RabbitMQ, each test on its own exchange and queues."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aio_pika
import pytest

from chat_contracts import Envelope, ErrorCode, PresenceChanged
from chat_contracts.commands import Command, Reply
from chat_contracts.errors import ApiError
from chat_platform.amqp import (
    Broker,
    BrokerUnavailable,
    CommandClient,
    CommandHandlers,
    CommandServer,
    Consumer,
    ConsumerSpec,
)
from chat_testkit import eventually, free_port
from chat_testkit.amqp import Rabbit
from chat_testkit.private import PrivateRabbitMQ

ROUTING_KEY = PresenceChanged.type


def presence(user_id: str = "u1") -> Envelope:
    return Envelope.wrap(PresenceChanged(user_id=user_id, online=True, last_seen=None), "tests")


async def start_consumer(broker: Broker, rabbit: Rabbit, handler: Any, **options: Any) -> str:
    queue = f"{rabbit.namespace}.consumer"
    rabbit.queues.append(queue)
    spec = ConsumerSpec(queue, [ROUTING_KEY], handler, **options)
    consumer = Consumer(broker, spec)
    await consumer.start()
    return queue


# --- publishing ------------------------------------------------------------------------------


async def test_publish_is_routed_by_type_as_a_persistent_json_envelope(
    broker: Broker, rabbit: Rabbit
) -> None:
    watcher = await rabbit.watch(ROUTING_KEY)
    envelope = presence()
    await broker.publish(envelope)
    message = await rabbit.get_from(watcher)
    assert Envelope.model_validate_json(message.body) == envelope
    assert message.message_id == envelope.id
    assert message.type == envelope.type
    assert message.routing_key == ROUTING_KEY
    assert message.content_type == "application/json"
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT


async def test_publish_without_a_connection_raises_broker_unavailable(amqp_url: str) -> None:
    broker = Broker(amqp_url, "unused.events", name="never-started")
    with pytest.raises(BrokerUnavailable):
        await broker.publish(presence())
    with pytest.raises(BrokerUnavailable):
        await broker.check()


async def test_unreachable_broker_does_not_block_start(namespace: str) -> None:
    broker = Broker(
        f"amqp://guest:guest@127.0.0.1:{free_port()}/", f"{namespace}.events", name="nowhere"
    )
    await broker.start(wait=0.3)
    assert not broker.connected
    with pytest.raises(BrokerUnavailable):
        await broker.publish(presence())
    await broker.close()


# --- consuming -------------------------------------------------------------------------------


async def test_consumer_handles_each_event_and_acks_it(broker: Broker, rabbit: Rabbit) -> None:
    handled: list[Envelope] = []

    async def handle(envelope: Envelope) -> None:
        handled.append(envelope)

    queue = await start_consumer(broker, rabbit, handle)
    # start() returns attached: an event published right away is not lost.
    sent = [presence(f"u{i}") for i in range(5)]
    for envelope in sent:
        await broker.publish(envelope)
    await eventually(lambda: len(handled) == 5)
    assert sorted(e.id for e in handled) == sorted(e.id for e in sent)
    await asyncio.sleep(0.1)
    assert await rabbit.count(queue) == 0
    assert await rabbit.count(f"{queue}.dead") == 0
    assert len(handled) == 5, "an acked event was delivered again"


async def test_failing_handler_is_retried_until_it_succeeds(broker: Broker, rabbit: Rabbit) -> None:
    attempts: list[str] = []

    async def flaky(envelope: Envelope) -> None:
        attempts.append(envelope.id)
        if len(attempts) < 3:
            raise RuntimeError("database hiccup")

    queue = await start_consumer(broker, rabbit, flaky, max_retries=5, retry_delay=0.01)
    envelope = presence()
    await broker.publish(envelope)
    await eventually(lambda: len(attempts) == 3)
    await asyncio.sleep(0.2)
    assert attempts == [envelope.id] * 3
    assert await rabbit.count(queue) == 0
    assert await rabbit.count(f"{queue}.dead") == 0


async def test_event_is_parked_in_the_dead_queue_after_max_retries(
    broker: Broker, rabbit: Rabbit
) -> None:
    attempts: list[str] = []

    async def broken(envelope: Envelope) -> None:
        attempts.append(envelope.id)
        raise RuntimeError("bug")

    queue = await start_consumer(broker, rabbit, broken, max_retries=2, retry_delay=0.01)
    envelope = presence()
    await broker.publish(envelope)
    parked = await rabbit.get(f"{queue}.dead")
    assert Envelope.model_validate_json(parked.body) == envelope
    assert parked.message_id == envelope.id
    # The first delivery and two retries, then no more.
    await asyncio.sleep(0.2)
    assert attempts == [envelope.id] * 3
    assert await rabbit.count(queue) == 0


@pytest.mark.parametrize(
    "body",
    [
        b"not json at all",
        b"\xff\xfe\x00",
        b"[]",
        b'{"id": "x", "type": "presence.changed"}',
        json.dumps({**presence().model_dump(mode="json"), "extra": 1}).encode(),
    ],
    ids=["text", "binary", "array", "missing-fields", "extra-field"],
)
async def test_malformed_body_is_parked_and_the_consumer_goes_on(
    body: bytes, broker: Broker, rabbit: Rabbit
) -> None:
    handled: list[Envelope] = []

    async def handle(envelope: Envelope) -> None:
        handled.append(envelope)

    queue = await start_consumer(broker, rabbit, handle)
    channel = await rabbit.connection.channel()
    exchange = await channel.get_exchange(rabbit.exchange)
    await exchange.publish(aio_pika.Message(body), routing_key=ROUTING_KEY)
    parked = await rabbit.get(f"{queue}.dead")
    assert parked.body == body
    assert handled == []

    good = presence()
    await broker.publish(good)
    await eventually(lambda: len(handled) == 1)
    assert handled[0].id == good.id


async def test_stop_finishes_the_event_in_hand(broker: Broker, rabbit: Rabbit) -> None:
    started = asyncio.Event()
    finished: list[str] = []

    async def slow(envelope: Envelope) -> None:
        started.set()
        await asyncio.sleep(0.3)
        finished.append(envelope.id)

    queue = f"{rabbit.namespace}.consumer"
    rabbit.queues.append(queue)
    consumer = Consumer(broker, ConsumerSpec(queue, [ROUTING_KEY], slow))
    await consumer.start()
    envelope = presence()
    await broker.publish(envelope)
    await asyncio.wait_for(started.wait(), 5)
    await consumer.stop(timeout=5)
    assert finished == [envelope.id]
    await asyncio.sleep(0.1)
    assert await rabbit.count(queue) == 0, "the finished event was not acked"

    # Stopped: a new event waits in the queue for the next consumer.
    await broker.publish(presence("u2"))
    await eventually(lambda: rabbit.count(queue), timeout=5)
    assert finished == [envelope.id]


async def test_consumer_registered_before_start_is_attached_when_start_returns(
    amqp_url: str, rabbit: Rabbit
) -> None:
    handled: list[Envelope] = []

    async def handle(envelope: Envelope) -> None:
        handled.append(envelope)

    broker = Broker(amqp_url, rabbit.exchange, name="late-start")
    queue = f"{rabbit.namespace}.consumer"
    rabbit.queues.append(queue)
    await Consumer(broker, ConsumerSpec(queue, [ROUTING_KEY], handle)).start()
    try:
        await broker.start()
        await broker.publish(presence())
        await eventually(lambda: len(handled) == 1)
    finally:
        await broker.close()


# --- commands --------------------------------------------------------------------------------


class Echoed(Reply):
    text: str
    n: int


class Echo(Command[Echoed]):
    """A command of these tests only: the server answers with what it was sent."""

    name = "test.echo"
    queue = "test.commands"
    text: str = ""
    n: int = 0
    delay: float = 0.0


class Launch(Command[Echoed]):
    name = "test.launch"
    queue = "test.commands"


async def start_commands(
    broker: Broker, rabbit: Rabbit, handlers: CommandHandlers, **options: Any
) -> tuple[CommandServer, CommandClient]:
    queue = f"{rabbit.namespace}.{Echo.queue}"
    rabbit.queues.append(queue)
    server = CommandServer(broker, queue, handlers, **options)
    await server.start()
    client = CommandClient(broker, rabbit.namespace, timeout=3)
    await client.start()
    return server, client


def answering(handler: Any) -> CommandHandlers:
    return CommandHandlers().add(Echo, handler)


async def echo(command: Echo) -> Echoed:
    await asyncio.sleep(command.delay)
    return Echoed(text=command.text, n=command.n)


async def test_command_round_trip_is_typed_on_both_sides(broker: Broker, rabbit: Rabbit) -> None:
    _, client = await start_commands(broker, rabbit, answering(echo))
    reply = await client.call(Echo(text="hé", n=1))
    assert reply == Echoed(text="hé", n=1)


async def test_concurrent_commands_each_get_their_own_reply(broker: Broker, rabbit: Rabbit) -> None:
    _, client = await start_commands(broker, rabbit, answering(echo))
    replies = await asyncio.gather(
        *(client.call(Echo(n=n, delay=0.01 * (n % 3))) for n in range(30))
    )
    assert [r.n for r in replies] == list(range(30))


async def test_command_error_reaches_the_caller(broker: Broker, rabbit: Rabbit) -> None:
    async def refuse(_: Echo) -> Echoed:
        raise ApiError(ErrorCode.FORBIDDEN, "Not a member.", {"conversation_id": "c1"})

    _, client = await start_commands(broker, rabbit, answering(refuse))
    with pytest.raises(ApiError) as caught:
        await client.call(Echo())
    assert caught.value.code is ErrorCode.FORBIDDEN
    assert caught.value.message == "Not a member."
    assert caught.value.details == {"conversation_id": "c1"}


async def test_unknown_command_is_not_found(broker: Broker, rabbit: Rabbit) -> None:
    _, client = await start_commands(broker, rabbit, answering(echo))
    with pytest.raises(ApiError) as caught:
        await client.call(Launch())
    assert caught.value.code is ErrorCode.NOT_FOUND


async def test_a_request_that_does_not_parse_is_a_validation_error(
    broker: Broker, rabbit: Rabbit
) -> None:
    handled: list[Echo] = []

    async def record(command: Echo) -> Echoed:
        handled.append(command)
        return Echoed(text="", n=0)

    server, _ = await start_commands(broker, rabbit, answering(record))
    for body in (b'{"text": 5}', b'{"text": "x", "extra": 1}', b"{not json", b"\xff\xfe", b"[]"):
        answer = await raw_call(rabbit, server.queue_name, Echo.name, body)
        assert answer is not None
        assert answer["ok"] is False
        assert answer["error"]["code"] == "validation_error", (body, answer)
    assert handled == []


async def raw_call(
    rabbit: Rabbit, queue: str, name: str, body: bytes, *, wait: float = 5.0, **headers: Any
) -> dict[str, Any] | None:
    """A command sent by hand, to see what the server does with what no client would send;
    None when no answer came within `wait` seconds."""
    channel = await rabbit.connection.channel()
    replies = await channel.declare_queue(exclusive=True, auto_delete=True)
    await channel.default_exchange.publish(
        aio_pika.Message(
            body, type=name, correlation_id="c", reply_to=replies.name, headers=headers
        ),
        routing_key=queue,
    )
    try:
        message = await rabbit.get_from(replies, timeout=wait)
    except AssertionError:  # how get_from says that nothing came
        return None
    finally:
        await channel.close()
    answer: dict[str, Any] = json.loads(message.body)
    return answer


async def test_a_command_past_its_deadline_is_dropped_unprocessed(
    broker: Broker, rabbit: Rabbit
) -> None:
    handled: list[Echo] = []

    async def record(command: Echo) -> Echoed:
        handled.append(command)
        return Echoed(text=command.text, n=command.n)

    server, client = await start_commands(broker, rabbit, answering(record))
    body = Echo(text="late").model_dump_json().encode()
    past = int((time.time() - 1) * 1000)
    late = await raw_call(
        rabbit, server.queue_name, Echo.name, body, wait=1.0, **{"x-deadline-ms": past}
    )
    assert late is None
    future = int((time.time() + 30) * 1000)
    in_time = await raw_call(
        rabbit, server.queue_name, Echo.name, body, **{"x-deadline-ms": future}
    )
    assert in_time == {"ok": True, "result": {"text": "late", "n": 0}}
    assert [c.text for c in handled] == ["late"]
    assert (await client.call(Echo(text="typed"))).text == "typed"


async def test_unexpected_handler_errors_are_internal_and_say_nothing(
    broker: Broker, rabbit: Rabbit
) -> None:
    async def crash(_: Echo) -> Echoed:
        raise RuntimeError("secret internals")

    _, client = await start_commands(broker, rabbit, answering(crash))
    with pytest.raises(ApiError) as unexpected:
        await client.call(Echo())
    assert unexpected.value.code is ErrorCode.INTERNAL
    assert "secret" not in unexpected.value.message


async def test_no_answer_in_time_is_a_timeout_as_the_outcome_is_unknown(
    broker: Broker, rabbit: Rabbit
) -> None:
    client = CommandClient(broker, f"{rabbit.namespace}.nobody-listens", timeout=0.3)
    await client.start()
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(ApiError) as caught:
        await client.call(Echo(text="hi"))
    assert caught.value.code is ErrorCode.TIMEOUT
    assert caught.value.status == 504
    assert 0.25 <= loop.time() - started < 2


async def test_slow_server_means_timeout_and_its_late_reply_is_ignored(
    broker: Broker, rabbit: Rabbit
) -> None:
    _, client = await start_commands(broker, rabbit, answering(echo))
    with pytest.raises(ApiError) as caught:
        await client.call(Echo(delay=0.5, n=1), timeout=0.1)
    assert caught.value.code is ErrorCode.TIMEOUT
    await asyncio.sleep(0.5)
    assert (await client.call(Echo(n=2))).n == 2


async def test_client_without_a_connection_is_unavailable_after_a_bounded_wait(
    amqp_url: str,
) -> None:
    broker = Broker(amqp_url, "unused.events", name="never-started")
    client = CommandClient(broker, "unused", reconnect_wait=0.3)
    started = time.monotonic()
    with pytest.raises(ApiError) as caught:
        await client.call(Echo())
    assert 0.25 <= time.monotonic() - started < 1.5
    assert caught.value.code is ErrorCode.UNAVAILABLE
    assert caught.value.details == {"retry_after": 1}


async def test_a_command_after_the_broker_restarted_goes_through_on_the_new_connection(
    private_rabbitmq: PrivateRabbitMQ,
) -> None:
    """The connection a restart killed is replaced while the command waits (bounded), instead
    of the first command after the restart being refused."""
    rabbit = private_rabbitmq
    brokers = [Broker(rabbit.url, "p.events", name=n) for n in ("server", "client")]
    try:
        server = CommandServer(brokers[0], f"p.{Echo.queue}", answering(echo))
        client = CommandClient(brokers[1], "p", timeout=10, reconnect_wait=10)
        await server.start()
        await client.start()
        for broker in brokers:
            await broker.start()
        assert (await client.call(Echo(n=1))).n == 1
        await asyncio.to_thread(rabbit.restart)
        assert (await client.call(Echo(n=2))).n == 2
    finally:
        for broker in brokers:
            await broker.close()
