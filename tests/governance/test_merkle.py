"""The Merkle tree against a direct transcription of RFC 6962's recursive definition."""

from __future__ import annotations

import hashlib

import pytest

from parsimon.governance.merkle import MerkleFrontier, inclusion_proof, merkle_root, verify_inclusion


def rfc6962_root(leaves: list[bytes]) -> bytes:
    """MTH(D[n]) as written in RFC 6962 section 2.1."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + rfc6962_root(leaves[:k]) + rfc6962_root(leaves[k:])).digest()


def rfc6962_path(m: int, leaves: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of RFC 6962 section 2.1.1 (siblings from the leaf up)."""
    if len(leaves) <= 1:
        return []
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    if m < k:
        return rfc6962_path(m, leaves[:k]) + [rfc6962_root(leaves[k:])]
    return rfc6962_path(m - k, leaves[k:]) + [rfc6962_root(leaves[:k])]


def leaves(n: int) -> list[bytes]:
    return [hashlib.sha256(str(i).encode()).digest() for i in range(n)]


@pytest.mark.parametrize("n", list(range(0, 20)) + [31, 32, 33, 64, 100])
def test_root_and_frontier_match_the_rfc(n):
    data = leaves(n)
    f = MerkleFrontier()
    for d in data:
        f.append(d)
    assert merkle_root(data) == rfc6962_root(data) == f.root()


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7, 8, 13, 33])
def test_inclusion_proofs(n):
    data = leaves(n)
    root = merkle_root(data)
    for i in range(n):
        proof = inclusion_proof(data, i)
        assert proof == rfc6962_path(i, data)
        assert verify_inclusion(data[i], i, n, proof, root)
        assert not verify_inclusion(hashlib.sha256(b"x").digest(), i, n, proof, root)
        if n > 1:
            assert not verify_inclusion(data[i], (i + 1) % n, n, proof, root)
            bad = [bytes(32)] + proof[1:]
            assert not verify_inclusion(data[i], i, n, bad, root)
            assert not verify_inclusion(data[i], i, n, proof[:-1], root)
