"""Appending to and querying the audit log."""

from __future__ import annotations

import hashlib
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, insert, or_, select, update
from sqlalchemy.orm import Session

from audit import signing, store, tree
from audit_verifier import chain, merkle, note
from cornerstore.db import utcnow
from cornerstore.models.audit import (
    AuditCheckpoint,
    AuditEntry,
    AuditEntryShop,
    AuditHead,
    AuditNode,
)
from cornerstore.ports import AuditDraft, Decision

HEAD_ID = 1


@dataclass(frozen=True)
class Head:
    """The log's tip as a locked head row holds it."""

    seq: int
    entry_hash: bytes
    frontier: bytes | None


@dataclass(frozen=True, slots=True)
class Unsequenced:
    """An entry encoded before it has a place in the log (see :func:`chain.encode_unsequenced`)."""

    fields: dict[str, Any]
    before: bytes
    after: bytes


def prepare(draft: AuditDraft) -> Unsequenced:
    """Encode ``draft`` as far as it can be without the log's lock."""
    fields = draft.model_dump()
    return Unsequenced(fields, *chain.encode_unsequenced(fields))


def append(session: Session, draft: AuditDraft) -> int:
    """Append one entry in the session's transaction; return its sequence number."""
    return append_many(session, [draft])[0]


def append_about_shops(session: Session, draft: AuditDraft, shop_ids: Sequence[uuid.UUID]) -> int:
    """Append an entry that concerns many shops (an aggregate); each finds it in its access log.

    The entry chains how many shops and a digest of their sorted ids; the
    shops themselves are listed in ``audit_entry_shops``, in this transaction.
    """
    ordered = sorted(set(shop_ids), key=lambda shop: shop.bytes)
    digest = hashlib.sha256(b"".join(shop.bytes for shop in ordered)).hexdigest()
    seq = append(
        session,
        draft.model_copy(
            update={"details": {**draft.details, "shops": len(ordered), "shops_sha256": digest}}
        ),
    )
    if not ordered:
        return seq
    if session.get_bind().dialect.name == "postgresql":
        # One array, not thousands of rows of parameters: this runs with the head locked.
        session.connection().exec_driver_sql(_NAME_SHOPS_PG, {"seq": seq, "shops": ordered})
    else:
        session.execute(insert(AuditEntryShop), [{"seq": seq, "shop_id": shop} for shop in ordered])
    return seq


_NAME_SHOPS_PG = (
    "INSERT INTO audit_entry_shops (seq, shop_id) SELECT %(seq)s, unnest(%(shops)s::uuid[])"
)


def append_many(session: Session, drafts: Sequence[AuditDraft]) -> list[int]:
    """Append entries in the session's transaction, in order; return their sequence numbers.

    See :func:`lock_head` for how appenders in any number of processes form
    one gap-free, duplicate-free sequence.
    """
    if not drafts:
        return []
    entries = [prepare(draft) for draft in drafts]
    return write_after(session, lock_head(session), entries)


# On PostgreSQL the head is locked and written with plain statements: they run
# while every other appender waits, and the ORM's own work doubled their cost.
_LOCK_HEAD_PG = "SELECT seq, entry_hash, frontier FROM audit_head WHERE id = %(id)s FOR UPDATE"
_SET_HEAD_PG = (
    "UPDATE audit_head SET seq = %(seq)s, entry_hash = %(entry_hash)s, frontier = %(frontier)s "
    "WHERE id = %(id)s"
)


def lock_head(session: Session) -> Head:
    """Lock the head row until the transaction ends, and read it.

    Every appender takes this lock first (a row lock on PostgreSQL, the
    database's write lock on SQLite), so appends are serialised. The group
    writer locks first and gathers entries after, so that everything that
    arrived while it waited goes into the same commit.
    """
    if session.get_bind().dialect.name == "sqlite":
        # SQLite has no row locks: a write takes the database's write lock.
        session.execute(update(AuditHead).where(AuditHead.id == HEAD_ID).values(seq=AuditHead.seq))
        row = session.execute(
            select(AuditHead.seq, AuditHead.entry_hash, AuditHead.frontier).where(
                AuditHead.id == HEAD_ID
            )
        ).one()
    else:
        row = session.connection().exec_driver_sql(_LOCK_HEAD_PG, {"id": HEAD_ID}).one()
    seq, entry_hash, frontier = row
    return Head(int(seq), bytes(entry_hash), frontier)


def write_after(session: Session, head: Head, entries: Sequence[Unsequenced]) -> list[int]:
    """Append ``entries`` after the locked ``head``: entries, tree nodes, then the head itself."""
    now = utcnow()
    stamp = chain.timestamp(now)
    rows: list[dict[str, Any]] = []
    leaves: list[bytes] = []
    chained = head.entry_hash
    for seq, entry in enumerate(entries, start=head.seq + 1):
        encoded = chain.splice(entry.before, entry.after, stamp, seq)
        prev, chained = chained, chain.link(chained, encoded)
        leaves.append(merkle.leaf_hash(encoded))
        rows.append(
            {
                "seq": seq,
                "recorded_at": now,
                **entry.fields,
                "prev_hash": prev,
                "entry_hash": chained,
            }
        )
    store.insert_entries(session, rows)
    new_head = {
        "id": HEAD_ID,
        "seq": head.seq + len(rows),
        "entry_hash": chained,
        "frontier": tree.extend(session, head.seq, head.frontier, leaves),
    }
    if session.get_bind().dialect.name == "sqlite":
        session.execute(update(AuditHead).where(AuditHead.id == HEAD_ID).values(**new_head))
    else:
        session.connection().exec_driver_sql(_SET_HEAD_PG, new_head)
    return [row["seq"] for row in rows]


def _fields(entry: AuditEntry) -> dict[str, object]:
    return {name: getattr(entry, name) for name in chain.CHAINED_FIELDS}


def encoded(entry: AuditEntry) -> bytes:
    """A stored entry's canonical bytes: what its leaf hash and its chain hash cover."""
    return chain.canonical_bytes(_fields(entry))


@dataclass(frozen=True)
class AuditFilter:
    shop_id: uuid.UUID | None = None
    principal_id: uuid.UUID | None = None
    purpose: str | None = None
    decision: Decision | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def query(
    session: Session,
    where: AuditFilter,
    *,
    after_seq: int,
    limit: int,
    before_seq: int | None = None,
) -> list[AuditEntry]:
    """Entries that match, oldest first after ``after_seq``; or, given ``before_seq``, the
    newest ones before it, newest first (as a person reads a log)."""
    stmt: Select[AuditEntry] = select(AuditEntry).where(AuditEntry.seq > after_seq)
    if before_seq is not None:
        stmt = stmt.where(AuditEntry.seq < before_seq)
    if where.shop_id is not None:
        # The shop's own entries, and those of aggregates that counted it.
        counted = select(AuditEntryShop.seq).where(AuditEntryShop.shop_id == where.shop_id)
        stmt = stmt.where(or_(AuditEntry.shop_id == where.shop_id, AuditEntry.seq.in_(counted)))
    if where.principal_id is not None:
        stmt = stmt.where(AuditEntry.principal_id == where.principal_id)
    if where.purpose is not None:
        stmt = stmt.where(AuditEntry.purpose == where.purpose)
    if where.decision is not None:
        stmt = stmt.where(AuditEntry.decision == where.decision)
    if where.action is not None:
        stmt = stmt.where(AuditEntry.action == where.action)
    if where.since is not None:
        stmt = stmt.where(AuditEntry.recorded_at >= where.since)
    if where.until is not None:
        stmt = stmt.where(AuditEntry.recorded_at < where.until)
    order = AuditEntry.seq.desc() if before_seq is not None else AuditEntry.seq
    return list(session.scalars(stmt.order_by(order).limit(limit)))


#: Told ``(done, total)`` as a verification goes: each entry counts once for the
#: hash chain and once for the tree, so ``total`` is twice the entries checked.
Progress = Callable[[int, int], None]


def _no_progress(_done: int, _total: int) -> None:
    return None


def _stored_entries(
    session: Session, up_to: int | None, batch: int, progress: Progress = _no_progress
) -> Iterator[dict[str, object]]:
    """Stored entries in seq order from the lowest, even one below 1, up to ``up_to``."""
    after: int | None = None
    total = 2 * (up_to or 0)
    while True:
        stmt = select(AuditEntry).order_by(AuditEntry.seq).limit(batch)
        if after is not None:
            stmt = stmt.where(AuditEntry.seq > after)
        if up_to is not None:
            stmt = stmt.where(AuditEntry.seq <= up_to)
        rows = session.scalars(stmt).all()
        if not rows:
            return
        for row in rows:
            fields = _fields(row)
            fields["prev_hash"] = row.prev_hash
            fields["entry_hash"] = row.entry_hash
            yield fields
        after = rows[-1].seq
        session.expunge_all()
        progress(min(max(after, 0), total // 2), total)


def _head(session: Session) -> chain.ChainHead | None:
    row = session.execute(
        select(AuditHead.seq, AuditHead.entry_hash).where(AuditHead.id == HEAD_ID)
    ).one_or_none()
    return chain.ChainHead(row.seq, bytes(row.entry_hash)) if row else None


def verify(
    session: Session, *, batch: int = 5000, progress: Progress = _no_progress
) -> chain.ChainReport:
    """Verify the chain up to the head as read first; later appends are outside this run.

    A running hub keeps appending, so entries after that head are not read.
    Still, no stored entry may lie beyond the head: an entry is committed
    with the head that covers it, so the newest entry, read before the head
    is read again, cannot be newer than it unless the head was wound back.
    """
    head = _head(session)
    report = chain.verify_chain(
        _stored_entries(session, head.seq if head else None, batch, progress), head=head
    )
    if not report.ok or head is None:
        return report
    newest = session.scalar(select(func.max(AuditEntry.seq)))
    now = _head(session)
    if newest is not None and now is not None and newest > now.seq:
        beyond = head.seq + 1
        return chain.ChainReport(
            report.entries_checked, beyond, f"entry {beyond} is not in the chain's head"
        )
    return verify_tree(session, up_to=head.seq, batch=batch, progress=progress)


def _signed_checkpoints(session: Session) -> list[tuple[int, bytes]] | chain.ChainReport:
    """Every stored checkpoint's signed size and root, oldest first, or why one does not verify.

    Each is opened with the published keys: its signed size and root are what
    count, never the columns stored beside it.
    """
    verifiers = [note.Verifier.from_key(key) for key in signing.verifier_keys(session)]
    found: list[tuple[int, bytes]] = []
    for stored_size, signed_note in session.execute(
        select(AuditCheckpoint.size, AuditCheckpoint.note).order_by(AuditCheckpoint.size)
    ):
        try:
            signed = note.verify_checkpoint(signed_note.encode(), verifiers)
        except note.NoteError as exc:
            return chain.ChainReport(
                0,
                max(int(stored_size), 1),
                f"the checkpoint of size {stored_size} is not validly signed: {exc}",
            )
        found.append((signed.size, signed.root_hash))
    return found


@dataclass
class _CheckpointWalk:
    """The signed checkpoints still ahead of a tree being rebuilt from the entries."""

    pending: deque[tuple[int, bytes]]
    good_size: int = 0

    def check(self, builder: merkle.TreeBuilder) -> chain.ChainReport | None:
        """Compare every checkpoint of the tree's current size with its root."""
        while self.pending and self.pending[0][0] == builder.size:
            size, root = self.pending.popleft()
            if root != builder.root():
                first = self.good_size + 1
                return chain.ChainReport(
                    builder.size,
                    first,
                    f"the signed checkpoint of size {size} does not match the entries: "
                    f"an entry from {first} to {size} was rewritten",
                )
            self.good_size = size
        return None


def verify_tree(
    session: Session, *, up_to: int, batch: int = 5000, progress: Progress = _no_progress
) -> chain.ChainReport:
    """Check the stored Merkle tree and the signed checkpoints against the entries.

    Run after the chain verified entries 1..``up_to``. Every entry's leaf hash
    must equal the stored leaf node, every stored checkpoint's root the root
    recomputed from the entries up to its size, and the newest checkpoint's
    signature must verify with a published key. Someone who rewrote entries
    and recomputed the chain and the nodes is caught by the checkpoints; the
    report then names the range between the last good and the first bad one.
    """
    signed = _signed_checkpoints(session)
    if isinstance(signed, chain.ChainReport):
        return signed
    # Checkpoints signed after this run began may exceed ``up_to``; none may
    # exceed the log as it is now, or signed entries were removed.
    now = head_seq(session)
    if signed and signed[-1][0] > now:
        signed_size = signed[-1][0]
        return chain.ChainReport(
            up_to,
            now + 1,
            f"a signed checkpoint covers {signed_size} entries but the log holds {now}: "
            f"entries {now + 1}..{signed_size} were removed",
        )
    builder = merkle.TreeBuilder()
    checkpoints = _CheckpointWalk(deque(item for item in signed if item[0] <= up_to))
    if (problem := checkpoints.check(builder)) is not None:
        return problem
    for start in range(1, up_to + 1, batch):
        end = min(start + batch - 1, up_to)
        stored = dict(
            session.execute(
                select(AuditNode.idx, AuditNode.hash).where(
                    AuditNode.level == 0, AuditNode.idx.between(start - 1, end - 1)
                )
            ).all()
        )
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.seq.between(start, end)).order_by(AuditEntry.seq)
        ).all()
        for row in rows:
            leaf = merkle.leaf_hash(encoded(row))
            if bytes(stored.get(row.seq - 1, b"")) != leaf:
                return chain.ChainReport(
                    row.seq - 1, row.seq, f"entry {row.seq} differs from its leaf in the tree"
                )
            builder.append(leaf)
            if (problem := checkpoints.check(builder)) is not None:
                return problem
        session.expunge_all()
        progress(up_to + end, 2 * up_to)
    frontier = session.scalar(select(AuditHead.frontier).where(AuditHead.id == HEAD_ID))
    if up_to and tree.root_of_frontier(frontier) != builder.root() and head_seq(session) == up_to:
        return chain.ChainReport(up_to, up_to, "the tree's stored frontier does not match")
    return chain.ChainReport(up_to)


def head_seq(session: Session) -> int:
    """How many entries the log holds, as its head row says."""
    return int(session.scalar(select(AuditHead.seq).where(AuditHead.id == HEAD_ID)) or 0)
