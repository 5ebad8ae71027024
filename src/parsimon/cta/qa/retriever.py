"""Okapi BM25 over local documents (a sparse term-document matrix; no downloads)."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
from scipy import sparse

__all__ = ["BM25", "tokenize"]

_TOKEN = re.compile(r"[a-z0-9]+")


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


class BM25:
    """``BM25(texts, k1=1.5, b=0.75)``; ``search(query, k) -> [(doc_index, score), ...]`` best first."""

    def __init__(self, texts: list[str], *, k1: float = 1.5, b: float = 0.75):
        if not texts:
            raise ValueError("`texts` is empty")
        if k1 < 0 or not 0 <= b <= 1:
            raise ValueError(f"need k1 >= 0 and 0 <= b <= 1, got k1={k1}, b={b}")
        self.k1, self.b = k1, b
        vocab: dict[str, int] = {}
        rows, cols, vals = [], [], []
        lengths = np.zeros(len(texts))
        for d, text in enumerate(texts):
            toks = tokenize(text)
            lengths[d] = len(toks)
            for tok, c in Counter(toks).items():
                rows.append(d)
                cols.append(vocab.setdefault(tok, len(vocab)))
                vals.append(c)
        self.vocab = vocab
        tf = sparse.csr_matrix((vals, (rows, cols)), shape=(len(texts), len(vocab)), dtype=float)
        n = len(texts)
        df = np.bincount(cols, minlength=len(vocab))
        self.idf = np.log(1 + (n - df + 0.5) / (df + 0.5))
        avg = lengths.mean() if lengths.mean() > 0 else 1.0
        norm = k1 * (1 - b + b * lengths / avg)
        tf = tf.tocoo()
        w = tf.data * (k1 + 1) / (tf.data + norm[tf.row])
        # column-major weights so a query selects a few term columns
        self.weights = sparse.csc_matrix((w, (tf.row, tf.col)), shape=tf.shape)

    def scores(self, query: str) -> np.ndarray:
        ids = [self.vocab[t] for t in tokenize(query) if t in self.vocab]
        if not ids:
            return np.zeros(self.weights.shape[0])
        cnt = Counter(ids)
        cols = list(cnt)
        q = np.array([cnt[c] * self.idf[c] for c in cols])
        return np.asarray(self.weights[:, cols] @ q).ravel()

    def search(self, query: str, k: int = 1) -> list[tuple[int, float]]:
        if k < 1:
            raise ValueError(f"`k` must be >= 1, got {k}")
        s = self.scores(query)
        top = np.argsort(-s, kind="stable")[:k]
        return [(int(i), float(s[i])) for i in top]
