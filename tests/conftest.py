"""Shared test set-up: one thread, a private PARSIMON_HOME, Triton's interpreter without a GPU."""

from __future__ import annotations

import os

# Before anything imports torch or decorates a Triton kernel.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

try:
    import torch

    torch.set_num_threads(1)
    if not torch.cuda.is_available():
        os.environ.setdefault("TRITON_INTERPRET", "1")
except ImportError:  # pragma: no cover
    torch = None

import pytest


@pytest.fixture(autouse=True)
def _parsimon_home(tmp_path_factory, monkeypatch):
    """Every test gets its own PARSIMON_HOME so ledgers and logs never leak between tests."""
    home = tmp_path_factory.mktemp("parsimon_home")
    monkeypatch.setenv("PARSIMON_HOME", str(home))
    yield home


def pytest_collection_modifyitems(config, items):
    has_gpu = bool(torch is not None and torch.cuda.is_available())
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords and not has_gpu:
            item.add_marker(skip_gpu)
