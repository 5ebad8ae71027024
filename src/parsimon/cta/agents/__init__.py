"""LLM agents for the CTA environments (PROMPTED and CTA-PROMPTED, thinking and non-thinking) and a
robust action parser."""

from __future__ import annotations

from parsimon.cta.agents.llm import LLMAgent, pandora_prompts, qa_prompts
from parsimon.cta.agents.parser import ActionGrammar, ParseResult, parse_action, strip_thinking
from parsimon.cta.agents.reasoner import PandoraReasonerClient

__all__ = ["ActionGrammar", "LLMAgent", "PandoraReasonerClient", "ParseResult", "pandora_prompts", "parse_action", "qa_prompts",
           "strip_thinking"]
