"""A Merkle tree over the proof-of-action log's record hashes, with inclusion proofs.

The tree follows RFC 6962 (Certificate Transparency), section 2.1: for ``n`` leaves ``d[0:n]``,

* ``MTH({}) = sha256()``, ``MTH({d0}) = sha256(0x00 || d0)``;
* for ``n > 1``, with ``k`` the largest power of two below ``n``:
  ``MTH(d[0:n]) = sha256(0x01 || MTH(d[0:k]) || MTH(d[k:n]))``.

A leaf's data is the record's 32-byte hash (the sha256 of its canonical body), so the root commits to
every record and its order. An inclusion proof is the list of sibling hashes on the path from the leaf
to the root (RFC 6962 section 2.1.1); :func:`verify_inclusion` recomputes the root from one record's
hash, its index and the proof, without the other records.

Example:
    >>> leaves = [bytes([i]) * 32 for i in range(5)]
    >>> root = merkle_root(leaves)
    >>> proof = inclusion_proof(leaves, 3)
    >>> verify_inclusion(leaves[3], 3, 5, proof, root)
    True
    >>> verify_inclusion(leaves[2], 3, 5, proof, root)
    False
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = ["MerkleFrontier", "inclusion_proof", "leaf_hash", "merkle_root", "verify_inclusion"]


def leaf_hash(data: bytes) -> bytes:
    """``sha256(0x00 || data)``."""
    return hashlib.sha256(b"\x00" + data).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def _check_leaves(leaves: Sequence[bytes]) -> None:
    for i, leaf in enumerate(leaves):
        if not isinstance(leaf, (bytes, bytearray)):
            raise ValueError(f"`leaves[{i}]` must be bytes, got {type(leaf).__name__}")


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """The tree head of ``leaves`` (each leaf's data, e.g. a record's 32-byte hash).

    Computed bottom-up level by level (iteratively, so a million records need no deep recursion); pairing
    left to right and carrying an odd last node up unchanged gives the same tree as RFC 6962's split.
    """
    _check_leaves(leaves)
    if not leaves:
        return hashlib.sha256(b"").digest()
    level = [leaf_hash(bytes(x)) for x in leaves]
    while len(level) > 1:
        nxt = [_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """The audit path of leaf ``index`` (siblings from the leaf up), as in RFC 6962 section 2.1.1."""
    _check_leaves(leaves)
    n = len(leaves)
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < n:
        raise ValueError(f"`index` must be in [0, {n}), got {index!r}")
    level = [leaf_hash(bytes(x)) for x in leaves]
    proof: list[bytes] = []
    i = index
    while len(level) > 1:
        sibling = i ^ 1
        if sibling < len(level):
            proof.append(level[sibling])
        nxt = [_node(level[j], level[j + 1]) for j in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level, i = nxt, i // 2
    return proof


def verify_inclusion(leaf: bytes, index: int, n: int, proof: Sequence[bytes], root: bytes) -> bool:
    """Whether ``leaf`` is leaf ``index`` of an ``n``-leaf tree with head ``root``, given its ``proof``."""
    if not isinstance(n, int) or not 0 <= index < n:
        return False
    h = leaf_hash(bytes(leaf))
    i, size = index, n
    k = 0
    while size > 1:
        if i ^ 1 < size:  # this node has a sibling at this level
            if k >= len(proof):
                return False
            h = _node(proof[k], h) if i % 2 else _node(h, proof[k])
            k += 1
        i, size = i // 2, (size + 1) // 2
    return k == len(proof) and h == root


class MerkleFrontier:
    """The root of a growing tree in O(log n) memory and time per leaf.

    It keeps the roots of the perfect subtrees the leaves so far decompose into (sizes are the binary
    digits of ``n``, largest first); the tree head folds them from the right, ``node(larger, h)``, which is
    RFC 6962's split (the largest power-of-two subtree on the left).

    Example:
        >>> f = MerkleFrontier()
        >>> leaves = [bytes([i]) * 32 for i in range(7)]
        >>> for leaf in leaves:
        ...     f.append(leaf)
        >>> f.root() == merkle_root(leaves), f.n
        (True, 7)
    """

    def __init__(self) -> None:
        self._stack: list[tuple[int, bytes]] = []  # (size, subtree root), sizes strictly decreasing
        self.n = 0

    def append(self, leaf: bytes) -> None:
        """Add the next leaf (its data, e.g. a record's 32-byte hash)."""
        size, h = 1, leaf_hash(bytes(leaf))
        while self._stack and self._stack[-1][0] == size:
            _, left = self._stack.pop()
            size, h = size * 2, _node(left, h)
        self._stack.append((size, h))
        self.n += 1

    def root(self) -> bytes:
        """The tree head of the leaves so far."""
        if not self._stack:
            return hashlib.sha256(b"").digest()
        h = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            h = _node(left, h)
        return h
