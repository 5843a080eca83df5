"""The Merkle tree (audit_verifier.merkle) against a naive reference, and larger trees.

The round trips generate proofs the way a server does, from stored
perfect-subtree nodes, and check them against a naive recursive
implementation written here from the RFC 9162 §2.1 text. Then tampered
proofs, trees of tens of thousands of leaves, and the plans for huge trees.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit_verifier import merkle
from audit_verifier.merkle import (
    EMPTY_ROOT,
    NodeId,
    ProofError,
    TreeBuilder,
    consistency_plan,
    consistency_proof,
    inclusion_plan,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_leaf_hashes,
    root_plan,
    verify_consistency,
    verify_inclusion,
)
from tests.merkle_vectors import (
    CONSISTENCY_PROOFS,
    LEAF_HASHES,
    LEAF_INPUTS,
    REF_CONSISTENCY_PROOFS,
    REF_INCLUSION_PROOFS,
    REFERENCE_STORE,
    ROOT_HASHES,
    SHA256_SOME_HASH,
    Store,
)

# --- a naive reference, straight from RFC 9162 §2.1 -----------------------------


def ref_split(n: int) -> int:
    """The largest power of two smaller than n."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of §2.1.1, over entries (not leaf hashes)."""
    n = len(d)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaf_hash(d[0])
    k = ref_split(n)
    return node_hash(ref_mth(d[:k]), ref_mth(d[k:]))


def ref_path(m: int, d: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of §2.1.3.1."""
    n = len(d)
    if n == 1:
        return []
    k = ref_split(n)
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_subproof(m: int, d: Sequence[bytes], b: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b) of §2.1.4.1."""
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = ref_split(n)
    if m <= k:
        return [*ref_subproof(m, d[:k], b), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


def ref_proof(m: int, d: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) of §2.1.4.1."""
    return ref_subproof(m, d, True)


def entries(n: int, salt: str = "") -> list[bytes]:
    return [f"entry {i}{salt}".encode() for i in range(n)]


MAX_SMALL = 70
SMALL_ENTRIES = entries(MAX_SMALL)
SMALL_STORE = Store([leaf_hash(e) for e in SMALL_ENTRIES])


@cache
def small_root(size: int) -> bytes:
    return ref_mth(SMALL_ENTRIES[:size])


def test_reference_agrees_with_the_vectors() -> None:
    for size in range(9):
        assert ref_mth(LEAF_INPUTS[:size]) == ROOT_HASHES[size]
    for index, size, proof in REF_INCLUSION_PROOFS:
        assert ref_path(index, LEAF_INPUTS[:size]) == proof
    for size1, size2, proof in REF_CONSISTENCY_PROOFS + CONSISTENCY_PROOFS:
        assert ref_proof(size1, LEAF_INPUTS[:size2]) == proof


@pytest.mark.parametrize("size", range(1, MAX_SMALL + 1))
def test_round_trip_every_inclusion_proof(size: int) -> None:
    root = small_root(size)
    get = SMALL_STORE.getter(size)
    assert merkle.root(size, get) == root
    assert root_from_leaf_hashes(SMALL_STORE.leaf_hashes[:size]) == root
    for index in range(size):
        proof = inclusion_proof(index, size, get)
        assert proof == ref_path(index, SMALL_ENTRIES[:size])
        verify_inclusion(index, size, SMALL_STORE.leaf_hashes[index], proof, root)


@pytest.mark.parametrize("new_size", range(1, MAX_SMALL + 1))
def test_round_trip_every_consistency_proof(new_size: int) -> None:
    new_root = small_root(new_size)
    get = SMALL_STORE.getter(new_size)
    for old_size in range(0, new_size + 1):
        proof = consistency_proof(old_size, new_size, get)
        expected = ref_proof(old_size, SMALL_ENTRIES[:new_size]) if old_size else []
        assert proof == expected
        verify_consistency(old_size, new_size, small_root(old_size), new_root, proof)


def flipped(proof: list[bytes], i: int, byte: int) -> list[bytes]:
    wrong = list(proof)
    wrong[i] = wrong[i][:byte] + bytes([wrong[i][byte] ^ 0x01]) + wrong[i][byte + 1 :]
    return wrong


def tamperings(proof: list[bytes]) -> list[tuple[str, list[bytes]]]:
    """Every way of spoiling a proof's hashes that must be refused."""
    out: list[tuple[str, list[bytes]]] = []
    for i in range(len(proof)):
        out.append((f"flip first byte of {i}", flipped(proof, i, 0)))
        out.append((f"flip last byte of {i}", flipped(proof, i, 31)))
    if proof:
        out.append(("truncated", proof[:-1]))
        out.append(("first dropped", proof[1:]))
    out.append(("extended", [*proof, SHA256_SOME_HASH]))
    out.append(("prefixed", [SHA256_SOME_HASH, *proof]))
    for i in range(len(proof) - 1):
        if proof[i] != proof[i + 1]:
            swapped = list(proof)
            swapped[i], swapped[i + 1] = swapped[i + 1], swapped[i]
            out.append((f"swapped {i} and {i + 1}", swapped))
    if len(proof) > 2:
        out.append(("reversed", proof[::-1]))
    return out


def refused(check: Callable[..., None], *args: object) -> bool:
    """Whether check(*args) raises ProofError."""
    try:
        check(*args)
    except ProofError:
        return True
    return False


@pytest.mark.parametrize("size", range(1, 41))
def test_tampered_inclusion_proofs_are_refused(size: int) -> None:
    root = small_root(size)
    leaves = SMALL_STORE.leaf_hashes
    get = SMALL_STORE.getter(MAX_SMALL)
    for index in range(size):
        proof = inclusion_proof(index, size, get)
        leaf = leaves[index]
        for desc, wrong in tamperings(proof):
            assert refused(verify_inclusion, index, size, leaf, wrong, root), desc
        # another leaf's hash, or this leaf claimed at another index
        for other in {index - 1, index + 1, index ^ 1, index ^ 2} - {index}:
            if 0 <= other < size:
                assert refused(verify_inclusion, index, size, leaves[other], proof, root)
            assert refused(verify_inclusion, other, size, leaf, proof, root)
        # the proof presented against a checkpoint of another size (and that size's root)
        for other_size in {size - 1, size + 1, size * 2, size // 2} - {size}:
            if other_size > 0:
                other_root = small_root(other_size)
                assert refused(verify_inclusion, index, other_size, leaf, proof, other_root)


@pytest.mark.parametrize("new_size", range(2, 41))
def test_tampered_consistency_proofs_are_refused(new_size: int) -> None:
    new_root = small_root(new_size)
    get = SMALL_STORE.getter(MAX_SMALL)
    for old_size in range(1, new_size):
        old_root = small_root(old_size)
        proof = consistency_proof(old_size, new_size, get)
        for desc, wrong in tamperings(proof):
            assert refused(verify_consistency, old_size, new_size, old_root, new_root, wrong), (
                old_size,
                desc,
            )
        # other sizes, each with its own true root
        for s1, s2 in [
            (old_size - 1, new_size),
            (old_size + 1, new_size),
            (old_size, new_size - 1),
            (old_size, new_size + 1),
        ]:
            if 0 < s1 < s2 and (s1, s2) != (old_size, new_size):
                r1, r2 = small_root(s1), small_root(s2)
                assert refused(verify_consistency, s1, s2, r1, r2, proof)
        # swapped roots, and a history rewritten at any old leaf
        assert refused(verify_consistency, old_size, new_size, new_root, old_root, proof)
        forged = ref_mth([*SMALL_ENTRIES[: old_size - 1], b"rewritten"])
        assert refused(verify_consistency, old_size, new_size, forged, new_root, proof)


# --- larger trees ----------------------------------------------------------------

LARGE = (1 << 15) + 1234


@pytest.fixture(scope="module")
def large_store() -> Store:
    return Store([leaf_hash(b"%d" % i) for i in range(LARGE)])


def test_large_random_sizes_round_trip(large_store: Store) -> None:
    rng = random.Random(9162)
    leaves = large_store.leaf_hashes
    sizes = [LARGE, 1 << 15, (1 << 15) - 1, *rng.sample(range(1, LARGE), 6)]
    for size in sizes:
        get = large_store.getter(size)
        root = merkle.root(size, get)
        assert root == root_from_leaf_hashes(leaves[:size])
        for index in [0, size - 1, *rng.sample(range(size), min(size, 20))]:
            proof = inclusion_proof(index, size, get)
            verify_inclusion(index, size, leaves[index], proof, root)
            assert refused(verify_inclusion, index, size, leaves[index], proof, EMPTY_ROOT)
        for old_size in [1, size, *rng.sample(range(1, size + 1), min(size, 20))]:
            old_root = merkle.root(old_size, get)
            proof = consistency_proof(old_size, size, get)
            verify_consistency(old_size, size, old_root, root, proof)
            if proof:
                spoiled = flipped(proof, len(proof) - 1, 7)
                assert refused(verify_consistency, old_size, size, old_root, root, spoiled)


def test_large_proofs_match_the_reference(large_store: Store) -> None:
    d = [b"%d" % i for i in range(LARGE)]
    size, index, old_size = LARGE, 20000, 23456
    get = large_store.getter(size)
    assert inclusion_proof(index, size, get) == ref_path(index, d)
    assert consistency_proof(old_size, size, get) == ref_proof(old_size, d[:size])


def test_builder_restored_midway_matches(large_store: Store) -> None:
    leaves = large_store.leaf_hashes
    builder = TreeBuilder()
    builder.extend(leaves[:12345])
    restored = TreeBuilder.restore(builder.size, builder.frontier())
    for leaf in leaves[12345:13000]:
        for level, index, digest in restored.append(leaf):
            assert large_store.nodes[(level, index)] == digest
    assert restored.root() == root_from_leaf_hashes(leaves[:13000])


# --- plans for huge trees (no hashing) -------------------------------------------


def check_element(element: list[NodeId], size: int) -> None:
    """Perfect, aligned, adjacent, largest first, and inside the tree."""
    assert element
    start = element[0][1] << element[0][0]
    for level, index in element:
        assert index << level == start
        assert (index + 1) << level <= size
        start += 1 << level
    levels = [level for level, _ in element]
    assert levels == sorted(levels, reverse=True)
    assert len(set(levels)) == len(levels)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 1 << 62), st.data())
def test_plans_for_huge_trees_are_well_formed(size: int, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, size - 1))
    plan = inclusion_plan(index, size)
    assert len(plan) == merkle._inclusion_length(index, size)
    assert len(plan) <= 2 * size.bit_length()
    for element in plan:
        check_element(element, size)
        # a sibling never contains the leaf
        first, last = element[0], element[-1]
        lo, hi = first[1] << first[0], (last[1] + 1) << last[0]
        assert not lo <= index < hi
    old_size = data.draw(st.integers(0, size))
    cplan = consistency_plan(old_size, size)
    if 0 < old_size < size:
        assert len(cplan) == merkle._consistency_length(old_size, size)
    else:
        assert cplan == []
    for element in cplan:
        check_element(element, size)
    assert sum(1 << level for level, _ in root_plan(size)) == size


def test_plans_refuse_impossible_requests() -> None:
    with pytest.raises(ValueError, match="not in a tree"):
        inclusion_plan(5, 5)
    with pytest.raises(ValueError, match="negative"):
        inclusion_plan(-1, 5)
    with pytest.raises(ValueError, match="cannot extend"):
        consistency_plan(6, 5)
    assert consistency_plan(0, 5) == []
    assert consistency_plan(5, 5) == []
    assert root_plan(0) == []
    assert merkle.root(0, REFERENCE_STORE.getter(0)) == EMPTY_ROOT


def test_a_getter_returning_the_wrong_count_is_an_error() -> None:
    with pytest.raises(ValueError, match="asked for"):
        inclusion_proof(0, 8, lambda ids: [])


def test_verification_messages_name_the_problem() -> None:
    proof = REFERENCE_STORE.getter(8)
    good = inclusion_proof(5, 8, proof)
    with pytest.raises(ProofError, match="not in a tree of 8"):
        verify_inclusion(8, 8, LEAF_HASHES[5], good, ROOT_HASHES[8])
    with pytest.raises(ProofError, match="empty tree"):
        verify_inclusion(0, 0, LEAF_HASHES[5], [], EMPTY_ROOT)
    with pytest.raises(ProofError, match="has 4 hashes; leaf 5 of a tree of 8 leaves needs 3"):
        verify_inclusion(5, 8, LEAF_HASHES[5], [*good, good[0]], ROOT_HASHES[8])
    with pytest.raises(ProofError, match="does not lead to the root"):
        verify_inclusion(5, 8, LEAF_HASHES[4], good, ROOT_HASHES[8])
    with pytest.raises(ProofError, match="proof hash 1 is 3 bytes"):
        verify_inclusion(5, 8, LEAF_HASHES[5], [good[0], b"abc", good[2]], ROOT_HASHES[8])
    cproof = consistency_proof(6, 8, proof)
    with pytest.raises(ProofError, match="smaller than the old"):
        verify_consistency(8, 6, ROOT_HASHES[8], ROOT_HASHES[6], cproof)
    with pytest.raises(ProofError, match="old root"):
        verify_consistency(6, 8, ROOT_HASHES[5], ROOT_HASHES[8], cproof)
    with pytest.raises(ProofError, match="new root"):
        verify_consistency(6, 8, ROOT_HASHES[6], ROOT_HASHES[7], cproof)
    with pytest.raises(ProofError, match="differ though both trees have 8"):
        verify_consistency(8, 8, ROOT_HASHES[8], ROOT_HASHES[7], [])
