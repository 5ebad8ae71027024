"""QA with optional retrieval over a generated knowledge base (the paper's PopQA setting, offline)."""

from __future__ import annotations

from parsimon.cta.qa.answerer import LLMAnswerer, SimulatedAnswerer, normalize_answer
from parsimon.cta.qa.env import (
    QABench,
    QAEnv,
    QATask,
    bench_of,
    generate_tasks,
    get_bench,
    load_tasks,
    optimal_decision,
    save_tasks,
)
from parsimon.cta.qa.kb import KnowledgeBase, generate_kb
from parsimon.cta.qa.retriever import BM25

__all__ = ["BM25", "KnowledgeBase", "LLMAnswerer", "QABench", "QAEnv", "QATask", "SimulatedAnswerer", "bench_of",
           "generate_kb", "generate_tasks", "get_bench", "load_tasks", "normalize_answer", "optimal_decision",
           "save_tasks"]
