"""GUI agents in the GUI-Owl-1.5 protocol (Mobile-Agent-v3.5, arXiv 2602.16855)."""

from __future__ import annotations

from parsimon.gui.actions import KINDS, WINDOW, Action, Element, Point, Window
from parsimon.gui.codecs import decode, decode_call, encode, encode_call
from parsimon.gui.coords import smart_resize, to_norm1000, to_pixels
from parsimon.gui.prompt import PromptConfig, Turn, build_messages
from parsimon.gui.reply import Reply, ToolCall, format_reply, parse_reply
from parsimon.gui.tools import system_prompt

__all__ = [
    "KINDS", "WINDOW", "Action", "Element", "Point", "PromptConfig", "Reply", "ToolCall", "Turn", "Window",
    "build_messages", "decode", "decode_call", "encode", "encode_call", "format_reply", "parse_reply",
    "smart_resize", "system_prompt", "to_norm1000", "to_pixels",
]
