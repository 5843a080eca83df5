"""For a push connector: sign the records it publishes on the hub's NATS ingest stream.

The hub stores a message only if it is signed with an Ed25519 key registered
for a connector (or shopkeeper) of the shop its subject names::

    signer = StreamSigner.generate()
    key = client.register_signing_key(connector_id, signer.public_key)
    signer = signer.named(key.key_id)
    subject, body, headers = signer.message(shop_id, "sales", [sale], msg_id=sale["event_id"])
    await js.publish(subject, body, headers=headers)  # nats-py

Keep the private key as you keep the API key (``StreamSigner.private_bytes``);
the hub only ever sees the public half. Nothing here speaks NATS, so any
client library publishes what this signs.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

SUBJECT_PREFIX: Final = "cornerstore.ingest"
_SIGNED_PREFIX: Final = b"cornerstore-ingest-v1\n"


def subject(shop_id: uuid.UUID | str, category: str) -> str:
    """Where records of one shop and category are published."""
    return f"{SUBJECT_PREFIX}.{shop_id}.{category}"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass(frozen=True)
class StreamSigner:
    """A connector's signing key, and the id the hub gave it when it was registered."""

    private_key: Ed25519PrivateKey
    key_id: str = ""

    @classmethod
    def generate(cls) -> StreamSigner:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, raw: bytes, key_id: str) -> StreamSigner:
        return cls(Ed25519PrivateKey.from_private_bytes(raw), key_id)

    def named(self, key_id: str) -> StreamSigner:
        """This key, with the id the hub answered its registration with."""
        return StreamSigner(self.private_key, key_id)

    @property
    def public_key(self) -> str:
        """The public half, base64url: what ``register_signing_key`` sends."""
        return _b64(self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))

    @property
    def private_bytes(self) -> bytes:
        """The 32-byte private key, to keep where the connector keeps its secrets."""
        return self.private_key.private_bytes_raw()

    def headers(self, to: str, body: bytes, *, msg_id: str) -> dict[str, str]:
        """The headers that make ``body`` on subject ``to`` the hub's to store.

        ``Nats-Msg-Id`` is ``msg_id`` and a digest of the signature: JetStream
        drops a repeated id anywhere in the stream, not only on one subject, so
        an event id alone would collide with another shop's, and anyone able to
        publish could claim it first. Signing is deterministic, so the same
        message sent again has the same id, and JetStream drops the retry.
        """
        if not self.key_id:
            raise ValueError("register the key first, and sign with signer.named(key_id)")
        signed = _SIGNED_PREFIX + to.encode() + b"\n" + body
        signature = self.private_key.sign(signed)
        return {
            "Nats-Msg-Id": f"{msg_id}:{hashlib.sha256(signature).hexdigest()[:32]}",
            "Cornerstore-Key": self.key_id,
            "Cornerstore-Signature": _b64(signature),
        }

    def message(
        self, shop_id: uuid.UUID | str, category: str, records: Any, *, msg_id: str
    ) -> tuple[str, bytes, dict[str, str]]:
        """Subject, body and headers of one record (a dict) or a batch (a list) to publish.

        ``msg_id``: the record's natural id (its ``event_id``), or one naming
        the batch; with the signature's digest it makes ``Nats-Msg-Id``, so
        that JetStream drops a retry of the same message. A publish answered
        ``duplicate`` arrived before.
        """
        to = subject(shop_id, category)
        body = json.dumps(records, separators=(",", ":"), ensure_ascii=False).encode()
        return to, body, self.headers(to, body, msg_id=msg_id)
