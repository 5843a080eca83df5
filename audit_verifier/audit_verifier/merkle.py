"""The Merkle tree over audit entries (RFC 9162 §2.1): hashes, proofs, verification.

This module depends on nothing but the standard library, so an auditor can
read it and re-run it over an export. The tree is the one Certificate
Transparency uses:

    leaf_hash(entry)        = SHA-256(0x00 || entry)
    node_hash(left, right)  = SHA-256(0x01 || left || right)
    MTH({})                 = SHA-256("")                    (EMPTY_ROOT)
    MTH({d0})               = leaf_hash(d0)
    MTH(D[0:n])             = node_hash(MTH(D[0:k]), MTH(D[k:n]))

where k is the largest power of two smaller than n. The 0x00 and 0x01
prefixes keep a leaf from ever being mistaken for an inner node.

Storage model. Every *perfect* subtree has a fixed place: node (L, i), at
level L and index i, covers leaves [i·2^L, (i+1)·2^L); level 0 holds the leaf
hashes. A perfect subtree never changes once its last leaf is appended, so a
server can store each one as it completes (:class:`TreeBuilder` reports
them) and answer any proof by reading O(log n) stored nodes: every hash a
proof needs is the root of a subtree made of a few perfect subtrees, which
the ``*_plan`` functions name and :func:`fold` combines.

Verification (:func:`verify_inclusion`, :func:`verify_consistency`) follows
RFC 9162 §2.1.3.2 and §2.1.4.2 step by step and raises :class:`ProofError`
with the reason when a proof does not hold; it never returns False.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

HASH_SIZE = 32

#: The root of the tree with no leaves: SHA-256 of the empty string.
EMPTY_ROOT = hashlib.sha256(b"").digest()

#: A perfect subtree's place: (level, index); it covers leaves [index·2^level, (index+1)·2^level).
NodeId = tuple[int, int]

#: A completed perfect subtree, as TreeBuilder.append reports it: (level, index, hash).
Node = tuple[int, int, bytes]

#: Reads stored perfect-subtree hashes: given node ids, returns their hashes in the same order.
NodeGetter = Callable[[Sequence[NodeId]], Sequence[bytes]]

_sha256 = hashlib.sha256


class ProofError(ValueError):
    """A proof, or the sizes, hashes or index given with it, does not hold."""


def leaf_hash(entry: bytes) -> bytes:
    """The hash of one leaf: SHA-256(0x00 || entry)."""
    return _sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an inner node: SHA-256(0x01 || left || right)."""
    return _sha256(b"\x01" + left + right).digest()


def _check_hash(value: bytes, what: str, error: type[ValueError] = ValueError) -> None:
    if len(value) != HASH_SIZE:
        raise error(f"{what} is {len(value)} bytes, not {HASH_SIZE}")


def _check_hashes(values: Iterable[bytes], what: str) -> None:
    for i, value in enumerate(values):
        if len(value) != HASH_SIZE:
            raise ValueError(f"{what} {i} is {len(value)} bytes, not {HASH_SIZE}")


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """MTH of the leaves with these hashes, computed level by level in O(n).

    Pairing neighbours on each level and carrying an odd last hash up unchanged
    gives exactly RFC 9162's recursive split at the largest power of two.
    """
    _check_hashes(hashes, "leaf hash")
    if not hashes:
        return EMPTY_ROOT
    level = list(hashes)
    while len(level) > 1:
        carried = level[-1] if len(level) % 2 else None
        level = [
            _sha256(b"\x01" + left + right).digest()
            for left, right in zip(level[0::2], level[1::2], strict=False)
        ]
        if carried is not None:
            level.append(carried)
    return level[0]


def fold(hashes: Sequence[bytes]) -> bytes:
    """The MTH of a subtree given as its perfect subtrees, left to right, largest first.

    It is the right fold node_hash(h1, node_hash(h2, ... node_hash(hn-1, hn))).
    A single hash is returned as is; no hash at all is the empty tree's root.
    """
    if not hashes:
        return EMPTY_ROOT
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = _sha256(b"\x01" + left + result).digest()
    return result


class TreeBuilder:
    """Builds the tree one leaf at a time, keeping only its right frontier.

    The frontier is the list of the perfect subtrees that make up the tree,
    left to right, largest first: one per set bit of the size, O(log n)
    hashes. It is all that is needed to append a leaf or compute the root,
    so a server can keep it in one row and restore a builder from it.
    """

    __slots__ = ("_frontier", "_size")

    def __init__(self) -> None:
        self._size = 0
        self._frontier: list[bytes] = []

    @classmethod
    def restore(cls, size: int, frontier: Sequence[bytes]) -> TreeBuilder:
        """A builder for a tree of ``size`` leaves, from the hashes :meth:`frontier` gave."""
        if size < 0:
            raise ValueError(f"a tree cannot have {size} leaves")
        expected = size.bit_count()
        if len(frontier) != expected:
            raise ValueError(
                f"a tree of {size} leaves has {expected} frontier hashes, not {len(frontier)}"
            )
        _check_hashes(frontier, "frontier hash")
        builder = cls()
        builder._size = size
        builder._frontier = [bytes(h) for h in frontier]
        return builder

    @property
    def size(self) -> int:
        """The number of leaves appended so far."""
        return self._size

    def frontier(self) -> list[bytes]:
        """The roots of the perfect subtrees making up the tree, largest (leftmost) first.

        Their node ids are :func:`root_plan` (size); :func:`fold` of them is the root.
        """
        return list(self._frontier)

    def append(self, leaf_hash: bytes) -> list[Node]:
        """Append one leaf; return every perfect subtree it completes, the leaf itself first.

        Appending leaf n (0-based) completes node (0, n) and, for every level L
        at which n + 1 is a multiple of 2^L, node (L, (n + 1) / 2^L - 1).
        """
        _check_hash(leaf_hash, "the leaf hash")
        new_size = self._size + 1
        current = bytes(leaf_hash)
        nodes: list[Node] = [(0, self._size, current)]
        level = 0
        remaining = self._size
        while remaining & 1:
            current = _sha256(b"\x01" + self._frontier.pop() + current).digest()
            level += 1
            remaining >>= 1
            nodes.append((level, (new_size >> level) - 1, current))
        self._frontier.append(current)
        self._size = new_size
        return nodes

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append many leaves, reporting nothing (the fast path for verifying an export)."""
        frontier = self._frontier
        size = self._size
        sha256 = _sha256
        try:
            for current in leaf_hashes:
                if len(current) != HASH_SIZE:
                    raise ValueError(f"leaf hash {size} is {len(current)} bytes, not {HASH_SIZE}")
                remaining = size
                while remaining & 1:
                    current = sha256(b"\x01" + frontier.pop() + current).digest()
                    remaining >>= 1
                frontier.append(current)
                size += 1
        finally:
            self._size = size

    def root(self) -> bytes:
        """The MTH of all leaves appended so far (EMPTY_ROOT when there are none)."""
        return fold(self._frontier)


def _check_size(value: int, what: str) -> None:
    if value < 0:
        raise ValueError(f"{what} cannot be negative ({value})")


def _split(n: int) -> int:
    """The largest power of two smaller than n (n >= 2): where RFC 9162 splits n leaves."""
    return 1 << ((n - 1).bit_length() - 1)


def _subtree_nodes(start: int, end: int) -> list[NodeId]:
    """The perfect subtrees making up leaves [start, end), left to right, largest first.

    Only for the subtrees RFC 9162's recursion produces: start is a multiple
    of a power of two at least end - start, so each piece is aligned.
    """
    nodes: list[NodeId] = []
    while start < end:
        level = (end - start).bit_length() - 1
        nodes.append((level, start >> level))
        start += 1 << level
    return nodes


def root_plan(size: int) -> list[NodeId]:
    """The perfect subtrees whose :func:`fold` is the root of a tree of ``size`` leaves."""
    _check_size(size, "a tree size")
    return _subtree_nodes(0, size)


def inclusion_plan(index: int, size: int) -> list[list[NodeId]]:
    """The nodes behind each hash of the inclusion proof for leaf ``index`` (RFC 9162 §2.1.3.1).

    Element j of the result is the proof's j-th hash, as the perfect subtrees
    whose :func:`fold` gives it; elements run from the leaf up to the root.
    """
    _check_size(index, "a leaf index")
    if index >= size:
        raise ValueError(f"leaf {index} is not in a tree of {size} leaves")
    # PATH(m, D[lo:hi]): split at k; the sibling subtree's MTH follows the
    # path inside the half holding m. Walk down, then list bottom-up.
    top_down: list[list[NodeId]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        mid = lo + _split(hi - lo)
        if index < mid:
            top_down.append(_subtree_nodes(mid, hi))
            hi = mid
        else:
            top_down.append(_subtree_nodes(lo, mid))
            lo = mid
    top_down.reverse()
    return top_down


def consistency_plan(old_size: int, new_size: int) -> list[list[NodeId]]:
    """The nodes behind each hash of the consistency proof from ``old_size`` (RFC 9162 §2.1.4.1).

    Element j of the result is the proof's j-th hash, as the perfect subtrees
    whose :func:`fold` gives it. The proof is empty when old_size is 0 or
    equals new_size.
    """
    _check_size(old_size, "a tree size")
    if old_size > new_size:
        raise ValueError(f"a tree of {new_size} leaves cannot extend one of {old_size}")
    if old_size in (0, new_size):
        return []
    # SUBPROOF(m, D[lo:hi], b): split at k; if m <= k recurse left and add the
    # right half's MTH, else recurse right (b becomes false) and add the left
    # half's MTH. When m reaches hi, the subtree itself is added unless b.
    top_down: list[list[NodeId]] = []
    lo, hi = 0, new_size
    whole_old_tree = True
    while old_size != hi:
        mid = lo + _split(hi - lo)
        if old_size <= mid:
            top_down.append(_subtree_nodes(mid, hi))
            hi = mid
        else:
            top_down.append(_subtree_nodes(lo, mid))
            lo = mid
            whole_old_tree = False
    if not whole_old_tree:
        top_down.append(_subtree_nodes(lo, hi))
    top_down.reverse()
    return top_down


def _fetch(plan: Sequence[Sequence[NodeId]], get: NodeGetter) -> list[bytes]:
    """Read every node of a plan with one call to ``get``; fold each element."""
    wanted = [node for element in plan for node in element]
    if not wanted:
        return [fold([]) for _ in plan]
    hashes = list(get(wanted))
    if len(hashes) != len(wanted):
        raise ValueError(f"asked for {len(wanted)} nodes, got {len(hashes)}")
    _check_hashes(hashes, "stored node")
    result: list[bytes] = []
    at = 0
    for element in plan:
        result.append(fold(hashes[at : at + len(element)]))
        at += len(element)
    return result


def root(size: int, get: NodeGetter) -> bytes:
    """The root of the tree's first ``size`` leaves, from stored nodes."""
    return _fetch([root_plan(size)], get)[0] if size else EMPTY_ROOT


def inclusion_proof(index: int, size: int, get: NodeGetter) -> list[bytes]:
    """The inclusion proof for leaf ``index`` in the tree of ``size`` leaves, from stored nodes."""
    return _fetch(inclusion_plan(index, size), get)


def consistency_proof(old_size: int, new_size: int, get: NodeGetter) -> list[bytes]:
    """The consistency proof from the tree of ``old_size`` leaves to ``new_size``, from storage."""
    return _fetch(consistency_plan(old_size, new_size), get)


def _check_proof_hashes(proof: Sequence[bytes]) -> None:
    for i, value in enumerate(proof):
        if len(value) != HASH_SIZE:
            raise ProofError(f"proof hash {i} is {len(value)} bytes, not {HASH_SIZE}")


def _inclusion_length(index: int, size: int) -> int:
    """How many hashes the inclusion proof for leaf ``index`` of ``size`` leaves has."""
    # Below the level where the paths to `index` and to the last leaf part,
    # every level contributes a sibling; above it, only the levels at which
    # the path turns right (a set bit of the remaining index) do.
    inner = (index ^ (size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


def verify_inclusion(
    index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that the leaf with ``leaf_hash`` is leaf ``index`` of the tree with ``root``.

    Follows RFC 9162 §2.1.3.2. Raises :class:`ProofError` saying what does not hold.
    """
    if index < 0 or size < 0:
        raise ProofError("a leaf index and a tree size cannot be negative")
    if size == 0:
        raise ProofError("an empty tree includes no leaf")
    if index >= size:
        raise ProofError(f"leaf {index} is not in a tree of {size} leaves")
    _check_hash(leaf_hash, "the leaf hash", ProofError)
    _check_hash(root, "the root", ProofError)
    _check_proof_hashes(proof)
    expected = _inclusion_length(index, size)
    if len(proof) != expected:
        raise ProofError(
            f"the proof has {len(proof)} hashes; leaf {index} of a tree of {size} "
            f"leaves needs {expected}"
        )

    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            raise ProofError("the proof is longer than the tree is high")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the proof is shorter than the tree is high")
    if r != root:
        raise ProofError(
            f"the proof does not lead to the root: leaf {index} with this hash is not "
            f"in this tree of {size} leaves"
        )


def _consistency_length(old_size: int, new_size: int) -> int:
    """How many hashes the consistency proof between 0 < old_size < new_size has."""
    shift = (old_size & -old_size).bit_length() - 1  # trailing zero bits of old_size
    inner = ((old_size - 1) ^ (new_size - 1)).bit_length()
    border = ((old_size - 1) >> inner).bit_count()
    seed = 0 if old_size == 1 << shift else 1
    return seed + (inner - shift) + border


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree with ``new_root`` extends the one with ``old_root`` (append-only).

    Follows RFC 9162 §2.1.4.2. Sizes 0 and equal sizes need an empty proof; a
    tree of size 0 must have EMPTY_ROOT and two trees of one size one root.
    Raises :class:`ProofError` saying what does not hold.
    """
    if old_size < 0 or new_size < 0:
        raise ProofError("a tree size cannot be negative")
    if old_size > new_size:
        raise ProofError(f"the new tree ({new_size} leaves) is smaller than the old ({old_size})")
    _check_hash(old_root, "the old root", ProofError)
    _check_hash(new_root, "the new root", ProofError)
    _check_proof_hashes(proof)
    if old_size == 0 or old_size == new_size:
        if proof:
            raise ProofError(
                f"a consistency proof from size {old_size} to {new_size} must be empty, "
                f"this one has {len(proof)} hashes"
            )
        if old_size == 0 and old_root != EMPTY_ROOT:
            raise ProofError("the old root is not the empty tree's root, though its size is 0")
        if old_size == new_size and old_root != new_root:
            raise ProofError(f"the two roots differ though both trees have {new_size} leaves")
        return
    expected = _consistency_length(old_size, new_size)
    if len(proof) != expected:
        raise ProofError(
            f"the proof has {len(proof)} hashes; from size {old_size} to {new_size} "
            f"it needs {expected}"
        )

    path = list(proof)
    if old_size & (old_size - 1) == 0:  # an exact power of two
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("the proof is longer than the trees are high")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the proof is shorter than the trees are high")
    if fr != old_root:
        raise ProofError(
            f"the proof does not lead to the old root: the first {old_size} leaves differ "
            "from the old tree"
        )
    if sr != new_root:
        raise ProofError(
            f"the proof does not lead to the new root: the tree of {new_size} leaves does "
            f"not extend the old one of {old_size}"
        )
