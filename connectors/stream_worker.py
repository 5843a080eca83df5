"""The hub's side of the ingest stream on NATS JetStream: the worker, its status, its replays.

Exactly once, end to end, comes from two parts working together: JetStream
drops a message published again with the same ``Nats-Msg-Id`` within the
stream's duplicate window (a publisher's retry), and the hub stores a record
once per natural id however often it arrives (a redelivery, a replay, a
retry after the window). The worker acknowledges a message only after the
transaction that stored it has committed, so a worker killed at any instant
loses nothing: what it had not acknowledged is delivered again.

The stream keeps a message until it is acknowledged (work-queue retention)
and, when full, refuses new ones rather than drop old ones, so a slow
database makes the stream buffer and, at its limit, publishers wait; nothing
is dropped. A message that keeps failing for a reason that is not its own
(the database is down) is retried with a doubling delay and, after
``ingest_max_deliver`` attempts, moved to the dead-letter stream, where
``cornerstore ingest status`` counts it and ``cornerstore ingest replay``
sends it back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit, urlunsplit

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)

from connectors import stream
from cornerstore.ports import Core
from cornerstore.settings import Settings

log = logging.getLogger(__name__)

#: The hub's durable consumer: every worker process pulls from it, each message goes to one.
CONSUMER: Final = "cornerstore-hub"
DEAD_PREFIX: Final = "cornerstore.dead.ingest"
MSG_ID_HEADER: Final = "Nats-Msg-Id"
#: On a dead letter: where it was published, under which id, and how often it failed.
ORIGINAL_SUBJECT: Final = "Cornerstore-Subject"
ORIGINAL_MSG_ID: Final = "Cornerstore-Msg-Id"
ATTEMPTS: Final = "Cornerstore-Attempts"
#: Fetches a worker has in hand at once: one is stored while the next is taken and
#: answered, so the database's commit waits and the worker's own work overlap.
LANES: Final = 2
#: The longest a failing message waits between attempts.
MAX_BACKOFF_SECONDS: Final = 300.0


class StreamNotConfigured(Exception):
    """No NATS server is named: CORNERSTORE_NATS_URL is unset."""


class StreamUnreachable(Exception):
    """The NATS server named does not answer."""


class ReplayStopped(Exception):
    """A replay that could not send every dead letter back; the rest stay where they were."""

    def __init__(self, sent: int, why: str) -> None:
        super().__init__(f"sent {sent} dead-lettered messages back, then stopped: {why}")
        self.sent = sent


@dataclass(frozen=True)
class StreamStatus:
    """How far behind the hub is, as ``cornerstore ingest status`` prints it."""

    #: Published and not yet taken by a worker.
    pending: int
    #: Taken by a worker and not yet answered.
    in_flight: int
    #: Delivered more than once (a worker stopped, or storing failed and is retried).
    redelivered: int
    #: Failed ``ingest_max_deliver`` times, waiting in the dead-letter stream for a replay.
    dead_lettered: int
    #: What the stream holds, of ``ingest_stream_max_bytes``.
    buffered_bytes: int


def shown(settings: Settings) -> str:
    """The NATS server's address without the credentials it may carry: for messages."""
    if settings.nats_url is None:
        return "(none)"
    url = urlsplit(settings.nats_url.get_secret_value())
    host = url.hostname or ""
    return urlunsplit(url._replace(netloc=host if url.port is None else f"{host}:{url.port}"))


async def connect(settings: Settings, *, patient: bool = False) -> Client:
    """A connection to the NATS server; ``patient``: retry for as long as it takes (the worker).

    Otherwise (a command) an unreachable server is :class:`StreamUnreachable` within seconds.
    """
    if settings.nats_url is None:
        raise StreamNotConfigured("set CORNERSTORE_NATS_URL to the NATS server (nats://host:4222)")

    async def _told(error: Exception) -> None:
        if patient:  # A command says it once, below; the worker says each time it retries.
            log.warning("NATS: %s %s", type(error).__name__, error)

    try:
        return await nats.connect(
            settings.nats_url.get_secret_value(),
            name="cornerstore-hub",
            error_cb=_told,
            connect_timeout=5,
            max_reconnect_attempts=-1 if patient else 1,
            reconnect_time_wait=2 if patient else 0.2,
        )
    except nats.errors.NoServersError:
        raise StreamUnreachable(f"cannot reach NATS at {shown(settings)}") from None


async def ensure_streams(js: JetStreamContext, settings: Settings) -> None:
    """Create the ingest and dead-letter streams, or bring their limits up to the settings."""
    for name, subjects, retention in (
        # Kept until a worker acknowledges it; what keeps failing waits until replayed.
        (settings.ingest_stream, stream.SUBJECT_PREFIX, RetentionPolicy.WORK_QUEUE),
        (settings.ingest_dead_letter_stream, DEAD_PREFIX, RetentionPolicy.LIMITS),
    ):
        config = StreamConfig(
            name=name,
            subjects=[f"{subjects}.>"],
            retention=retention,
            discard=DiscardPolicy.NEW,
            max_bytes=settings.ingest_stream_max_bytes,
            duplicate_window=settings.ingest_duplicate_window.total_seconds(),
            storage=StorageType.FILE,
        )
        try:
            await js.stream_info(name)
        except nats.js.errors.NotFoundError:
            await js.add_stream(config)
        else:
            await js.update_stream(config)


async def run(core: Core, stop: asyncio.Event) -> None:
    """Take, store and answer messages until ``stop`` is set."""
    settings = core.settings
    client = await connect(settings, patient=True)
    try:
        js = client.jetstream()
        await ensure_streams(js, settings)
        config = ConsumerConfig(
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=settings.ingest_ack_wait_seconds,
            # The worker counts attempts itself, to dead-letter what keeps failing.
            max_deliver=-1,
            max_ack_pending=settings.ingest_fetch_batch * 4,
        )
        lanes = [
            await js.pull_subscribe(
                f"{stream.SUBJECT_PREFIX}.>",
                durable=CONSUMER,
                stream=settings.ingest_stream,
                config=config,
            )
            for _ in range(LANES)
        ]
        log.info("ingest worker is taking messages from %s", settings.ingest_stream)
        await asyncio.gather(*(_take(core, js, lane, stop) for lane in lanes))
        await client.flush()  # The last answers reach the server before the connection ends.
    finally:
        # Not drain(): a pull subscription's drain waits out its timeout for nothing.
        await client.close()


async def _take(
    core: Core, js: JetStreamContext, lane: JetStreamContext.PullSubscription, stop: asyncio.Event
) -> None:
    settings = core.settings
    while not stop.is_set():
        try:
            messages = await lane.fetch(settings.ingest_fetch_batch, timeout=1.0)
        except (TimeoutError, nats.errors.TimeoutError):
            continue  # Nothing published meanwhile; `stop` is looked at again.
        except nats.errors.Error as exc:
            # The connection is down or reconnecting; what was taken comes back after ack_wait.
            log.warning("NATS: %s; fetching again shortly", type(exc).__name__)
            await asyncio.sleep(1.0)
            continue
        outcomes = await _store(core, messages)
        for message, outcome in zip(messages, outcomes, strict=True):
            try:
                await _answer(js, settings, message, outcome)
            except nats.errors.Error as exc:
                # Unanswered, it is delivered again after ack_wait, and stored once.
                log.warning("NATS: %s while answering a message", type(exc).__name__)


async def _store(core: Core, messages: list[Msg]) -> list[stream.Outcome]:
    """Store a fetch off the event loop (blocking database work), telling JetStream the
    messages are in hand meanwhile, so that a long store is not delivered twice."""
    deliveries = [stream.Delivery(m.subject, dict(m.headers or {}), m.data) for m in messages]
    storing = asyncio.ensure_future(asyncio.to_thread(stream.store, core, deliveries))
    heartbeat = core.settings.ingest_ack_wait_seconds / 3
    while not storing.done():
        await asyncio.wait({storing}, timeout=heartbeat)
        if not storing.done():
            for message in messages:
                with contextlib.suppress(nats.errors.Error):
                    await message.in_progress()
    try:
        return storing.result()
    except Exception as exc:
        name = type(exc).__name__
        log.warning("storing %d messages failed (%s); they will be retried", len(messages), name)
        return [stream.Outcome.retry] * len(messages)


async def _answer(
    js: JetStreamContext, settings: Settings, message: Msg, outcome: stream.Outcome
) -> None:
    if outcome is stream.Outcome.done:
        await message.ack()
    elif outcome is stream.Outcome.refused:
        await message.term()
    else:
        attempts = message.metadata.num_delivered
        delay = min(settings.ingest_backoff_seconds * 2 ** (attempts - 1), MAX_BACKOFF_SECONDS)
        if attempts < settings.ingest_max_deliver:
            await message.nak(delay=delay)
            return
        try:
            await _dead_letter(js, settings, message, attempts)
        except nats.errors.Error as exc:
            # The dead-letter stream is full or unreachable: the message stays where it is.
            log.warning("could not dead-letter a message (%s); it waits", type(exc).__name__)
            await message.nak(delay=MAX_BACKOFF_SECONDS)
            return
        await message.ack()


async def _dead_letter(
    js: JetStreamContext, settings: Settings, message: Msg, attempts: int
) -> None:
    headers = dict(message.headers or {})
    original_id = headers.pop(MSG_ID_HEADER, None)
    headers[ORIGINAL_SUBJECT] = message.subject
    headers[ATTEMPTS] = str(attempts)
    if original_id is not None:
        headers[ORIGINAL_MSG_ID] = original_id
    # Named by its place in the ingest stream and its own id: moved twice (a
    # worker stopped between the move and the ack), it is still one dead letter.
    sequence = message.metadata.sequence.stream
    headers[MSG_ID_HEADER] = f"dead:{sequence}:{original_id or ''}"
    shop_and_category = message.subject.removeprefix(stream.SUBJECT_PREFIX)
    await js.publish(
        DEAD_PREFIX + shop_and_category,
        message.data,
        headers=headers,
        stream=settings.ingest_dead_letter_stream,
    )
    log.warning("dead-lettered a message on %s after %d attempts", message.subject, attempts)


async def status(settings: Settings) -> StreamStatus:
    client = await connect(settings)
    try:
        js = client.jetstream()
        await ensure_streams(js, settings)
        ingest = await js.stream_info(settings.ingest_stream)
        dead = await js.stream_info(settings.ingest_dead_letter_stream)
        try:
            consumer = await js.consumer_info(settings.ingest_stream, CONSUMER)
        except nats.js.errors.NotFoundError:
            # No worker has run yet: everything in the stream is waiting.
            pending, in_flight, redelivered = ingest.state.messages, 0, 0
        else:
            pending = consumer.num_pending or 0
            in_flight = consumer.num_ack_pending or 0
            redelivered = consumer.num_redelivered or 0
        return StreamStatus(
            pending=pending,
            in_flight=in_flight,
            redelivered=redelivered,
            dead_lettered=dead.state.messages,
            buffered_bytes=ingest.state.bytes,
        )
    finally:
        await client.close()


async def replay(settings: Settings) -> int:
    """Send every dead letter back to the ingest stream, oldest first; how many were sent.

    A replay is a new message (a new ``Nats-Msg-Id``, so the duplicate window
    does not drop it), signed as it first came: the hub checks its signature
    and stores its records once each, as for any message.
    """
    client = await connect(settings)
    sent = 0
    try:
        js = client.jetstream()
        await ensure_streams(js, settings)
        dead = await js.stream_info(settings.ingest_dead_letter_stream)
        for sequence in range(dead.state.first_seq, dead.state.last_seq + 1):
            try:
                letter = await js.get_msg(settings.ingest_dead_letter_stream, sequence)
            except nats.js.errors.NotFoundError:
                continue  # Replayed and deleted before.
            headers = dict(letter.headers or {})
            subject = headers.pop(ORIGINAL_SUBJECT, None)
            if subject is None:
                continue  # Not one the worker moved: left where it is, for the operator.
            original_id = headers.pop(ORIGINAL_MSG_ID, "")
            headers.pop(ATTEMPTS, None)
            headers[MSG_ID_HEADER] = f"{original_id}:replay:{sequence}"
            try:
                await js.publish(
                    subject, letter.data or b"", headers=headers, stream=settings.ingest_stream
                )
            except nats.errors.Error as exc:
                # The ingest stream is full, say: what is left stays dead-lettered for later.
                raise ReplayStopped(sent, type(exc).__name__) from None
            await js.delete_msg(settings.ingest_dead_letter_stream, sequence)
            sent += 1
    finally:
        await client.close()
    return sent
