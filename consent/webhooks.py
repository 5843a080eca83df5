"""Consumers' webhooks: the signing secret, registration, the outbox, signing and verifying.

A consumer registers one URL. Every change of one of its consents adds an
event to ``webhook_deliveries`` in the same transaction as the change (an
outbox), so an event exists if and only if the change was committed;
:mod:`consent.delivery` then POSTs it, retrying with backoff.

The database never holds a secret. A consumer's secret is
HMAC-SHA256(webhook key, consumer id || salt), where the 32-byte webhook key
lives in a private file beside the other keys and the salt is drawn anew at
every registration. Registering again is therefore how a consumer rotates its
secret; a copy of the database alone cannot forge a webhook.

How a consumer verifies a delivery
----------------------------------

Deliveries follow the Standard Webhooks specification
(https://www.standardwebhooks.com), so a consumer in any language verifies
them with the ``standardwebhooks`` library of its choice. Each POST carries
the JSON event as its body and three headers::

    webhook-id: <the event's id, also "event_id" in the body>
    webhook-timestamp: <unix seconds>
    webhook-signature: v1,<base64 of HMAC-SHA256(key, f"{id}.{timestamp}." + body)>

The secret is shown once, as ``whsec_`` followed by the standard base64 of
32 bytes, the HMAC key. A receiver computes the signature over the raw body
bytes, exactly as received, compares it with each ``v1`` in constant time,
and refuses a timestamp more than a few minutes from its own clock, so a
captured request cannot be replayed later. The ``cornerstore-client`` SDK's
``verify_webhook`` does all three.

The timestamp only bounds how late a replay can come: within the tolerance
the same signed request can still be sent twice, and the hub itself delivers
at least once (a delivery whose answer was lost is sent again). A receiver
should therefore also remember the event ids it has processed, for longer
than the tolerance, and skip one it has seen. Events are delivered
independently, so a retried one can arrive after a later one; a consent's
``version`` says which change came last.

Until the next release each delivery also carries the headers it had
before, ``Cornerstore-Event-Id`` and ``Cornerstore-Signature:
t=<unix seconds>,v1=<hex HMAC-SHA256(key, f"{t}." + body)>`` (:func:`sign`,
:func:`verify`), and secrets handed out before (base64url without padding)
keep working (:func:`decode_secret`); see docs/changelog.md.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import secrets
import socket
import uuid
from collections.abc import Collection
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.orm import Session
from standardwebhooks.webhooks import Webhook

from cornerstore.crypto import KeyMaterialError
from cornerstore.db import utcnow
from cornerstore.keys.files import create_private, refuse_if_shared
from cornerstore.models.consent import ConsumerWebhook, WebhookDelivery

KEY_BYTES = 32
SALT_BYTES = 32
SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
#: The headers of the Cornerstore scheme, sent beside Standard Webhooks' until the next release.
SIGNATURE_HEADER = "Cornerstore-Signature"
EVENT_ID_HEADER = "Cornerstore-Event-Id"
#: How far a signature's timestamp may be from the receiver's clock, in seconds.
DEFAULT_TOLERANCE = 300
#: The longest URL the ``consumer_webhooks.url`` column holds.
MAX_URL_LENGTH = 2000

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"


#: The one kind of event there is: a consent's status changed.
STATUS_EVENT = "consent.status_changed"


class WebhookSignatureError(Exception):
    """A webhook request that must not be trusted: unsigned, forged, tampered or replayed."""


# --- the secret -------------------------------------------------------------------------------


def load_key(path: Path) -> bytes:
    """The hub's webhook key, made (32 random bytes, mode 0600) on first use."""
    create_private(path, secrets.token_bytes(KEY_BYTES))
    refuse_if_shared(path)
    key = path.read_bytes()
    if len(key) != KEY_BYTES:
        raise KeyMaterialError(f"webhook key file {path} does not hold one 32-byte key")
    return key


def derive_secret(key: bytes, consumer_id: uuid.UUID, salt: bytes) -> bytes:
    return hmac.new(key, consumer_id.bytes + salt, hashlib.sha256).digest()


def encode_secret(secret: bytes) -> str:
    """``whsec_`` and the standard base64 of the key, as Standard Webhooks libraries read it."""
    return SECRET_PREFIX + base64.b64encode(secret).decode("ascii")


def decode_secret(text: str) -> bytes:
    """The HMAC key a ``whsec_...`` secret stands for.

    Reads the standard base64 the hub hands out now, and the base64url
    without padding it handed out before (told apart by ``-`` and ``_``,
    which standard base64 never uses; either alphabet reads the rest alike).
    """
    if not text.startswith(SECRET_PREFIX):
        raise ValueError(f"a webhook secret starts with {SECRET_PREFIX}")
    encoded = text.removeprefix(SECRET_PREFIX).rstrip("=")
    padded = encoded + "=" * (-len(encoded) % 4)
    try:
        if "-" in encoded or "_" in encoded:
            secret = base64.urlsafe_b64decode(padded)
        else:
            secret = base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a webhook secret is base64 after its prefix") from None
    if len(secret) != KEY_BYTES:
        raise ValueError("a webhook secret encodes 32 bytes")
    return secret


def secret_of(key: bytes, webhook: ConsumerWebhook) -> bytes:
    return derive_secret(key, webhook.consumer_id, webhook.secret_salt)


# --- registration -----------------------------------------------------------------------------


#: Prefixes whose last 32 bits are an IPv4 address: NAT64's well-known and local-use ones
#: (RFC 6052, RFC 8215), IPv4-compatible (::/96) and IPv4-translated (::ffff:0:0:0/96).
_CARRY_IPV4 = (
    ipaddress.ip_network("64:ff9b::/96"),
    ipaddress.ip_network("64:ff9b:1::/48"),
    ipaddress.ip_network("::/96"),
    ipaddress.ip_network("::ffff:0:0:0/96"),
)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, NAT64), which is where it leads."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if any(address in prefix for prefix in _CARRY_IPV4):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public_address(host: str) -> bool:
    """Whether an IP address is one the public internet routes (not loopback, private, ...).

    An IPv6 address that embeds an IPv4 one is judged by the IPv4 address.
    """
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return _routable(embedded)
        if address.is_site_local:
            return False
    return _routable(address)


def _routable(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return address.is_global and not address.is_multicast


def delivery_address(host: str, private_hosts: Collection[str]) -> str | None:
    """The address to deliver to ``host`` at, or None if it must not be reached.

    Every address the name resolves to must be public (unless the operator
    named the host in ``webhook_private_hosts``, for development), so a
    consumer cannot aim the hub at hosts inside its network and read their
    answers off the delivery log. The connection then goes to the address
    returned (:mod:`consent.pinned_http`), not to a second lookup.
    """
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return None
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        return None
    if host in private_hosts or all(is_public_address(a) for a in addresses):
        return addresses[0]
    return None


def url_problem(url: str, *, https_only: bool, private_hosts: Collection[str] = ()) -> str | None:
    """Why ``url`` cannot receive webhooks, or None if it can."""
    if len(url) > MAX_URL_LENGTH:
        return f"must be at most {MAX_URL_LENGTH} characters"
    if not url.isascii() or any(c.isspace() or not c.isprintable() for c in url):
        return "must be an ASCII URL without spaces or control characters"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "must be an absolute http or https URL"
    allowed = ("https",) if https_only else ("http", "https")
    if parts.scheme not in allowed:
        return "must use https" if https_only else "must be an http or https URL"
    if not parts.hostname:
        return "must name a host"
    if port == 0:
        return "must not name port 0"
    if parts.username is not None or parts.password is not None:
        return "must not carry credentials"
    if parts.fragment:
        return "must not have a fragment (it is never sent)"
    try:
        ipaddress.ip_address(parts.hostname.split("%", 1)[0])
    except ValueError:
        return None  # A name: checked against what it resolves to at each send.
    if parts.hostname not in private_hosts and not is_public_address(parts.hostname):
        return "must not point at a loopback, private, link-local or reserved address"
    return None


def register(
    session: Session, key: bytes, consumer_id: uuid.UUID, url: str, *, now: datetime | None = None
) -> tuple[ConsumerWebhook, bytes]:
    """Set the consumer's webhook URL and draw a new secret; return the row and the secret.

    Registering again replaces the URL and the secret (the old one stops
    verifying at once) and restarts ``created_at``: it is when the current
    secret was made. Pending deliveries go to the new URL, signed with the
    new secret. Flushes only.
    """
    webhook = session.get(ConsumerWebhook, consumer_id, with_for_update=True)
    salt = secrets.token_bytes(SALT_BYTES)
    when = now or utcnow()
    if webhook is None:
        webhook = ConsumerWebhook(consumer_id=consumer_id, url=url, secret_salt=salt)
        session.add(webhook)
    webhook.url = url
    webhook.secret_salt = salt
    webhook.created_at = when
    session.flush()
    return webhook, secret_of(key, webhook)


# --- the outbox -------------------------------------------------------------------------------


def enqueue(
    session: Session,
    consumer_id: uuid.UUID,
    event_type: str,
    payload: dict[str, Any],
    *,
    now: datetime | None = None,
) -> WebhookDelivery | None:
    """Add the event to the consumer's outbox in the caller's transaction; None without a webhook.

    The body sent is ``payload`` with ``event_id`` (this delivery's id) and
    ``type`` set here, so every body names its event. Flushes only: the
    event is stored if and only if the caller's transaction commits.
    """
    if session.get(ConsumerWebhook, consumer_id) is None:
        return None
    when = now or utcnow()
    delivery_id = uuid.uuid4()
    body = {
        "event_id": str(delivery_id),
        "type": event_type,
        **{k: v for k, v in payload.items() if k not in ("event_id", "type")},
    }
    delivery = WebhookDelivery(
        id=delivery_id,
        consumer_id=consumer_id,
        event_type=event_type,
        payload=body,
        state=PENDING,
        attempts=0,
        next_attempt_at=when,
        created_at=when,
    )
    session.add(delivery)
    session.flush()
    return delivery


# --- signing and verifying --------------------------------------------------------------------


def _digest(secret: bytes, timestamp: int, body: bytes) -> str:
    return hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def standard_headers(secret: bytes, event_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The Standard Webhooks headers for ``body``, signed by the specification's own library."""
    signature = Webhook(secret).sign(
        event_id, datetime.fromtimestamp(timestamp, UTC), body.decode("utf-8")
    )
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The ``Cornerstore-Signature`` header value for ``body`` sent at ``timestamp``.

    Sent beside the Standard Webhooks headers until the next release.
    """
    return f"t={timestamp},v1={_digest(secret, timestamp, body)}"


def _parse(header: str) -> tuple[int, list[str]]:
    if not header.isascii():
        raise WebhookSignatureError("malformed signature header")
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        name, equals, value = item.strip().partition("=")
        if not equals:
            raise WebhookSignatureError("malformed signature header")
        if name == "t":
            if timestamp is not None or not (value.isascii() and value.isdigit()):
                raise WebhookSignatureError("malformed signature timestamp")
            timestamp = int(value)
        elif name == "v1":
            signatures.append(value)
        # Other schemes (a later v2) are skipped, so receivers keep working as they come.
    if timestamp is None:
        raise WebhookSignatureError("the signature header has no timestamp")
    if not signatures:
        raise WebhookSignatureError("the signature header has no v1 signature")
    return timestamp, signatures


def verify(
    secret: bytes, header: str, body: bytes, *, now: int, tolerance: int = DEFAULT_TOLERANCE
) -> None:
    """Accept a webhook request, or raise :class:`WebhookSignatureError`.

    ``header`` is the ``Cornerstore-Signature`` value, ``body`` the raw bytes
    received and ``now`` the receiver's clock in unix seconds. The request is
    refused unless a ``v1`` signature matches and its timestamp is within
    ``tolerance`` seconds of ``now`` (either way: a clock ahead is as suspect
    as one behind).
    """
    timestamp, signatures = _parse(header)
    expected = _digest(secret, timestamp, body).encode()
    # Compare every candidate, so the time taken says nothing about which one matched.
    matched = False
    for candidate in signatures:
        matched |= hmac.compare_digest(expected, candidate.encode())
    if not matched:
        raise WebhookSignatureError("no signature matches the body")
    if abs(now - timestamp) > tolerance:
        raise WebhookSignatureError("the signature's timestamp is outside the tolerance")
