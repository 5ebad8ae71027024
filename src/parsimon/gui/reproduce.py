"""The GUI section of the report: GUI-Owl-1.5 agents (Mobile-Agent-v3.5) and the Computer-Using World Model."""

from __future__ import annotations

from typing import Any

__all__ = ["reproduce"]


def reproduce(ctx: Any) -> Any:
    """The section (see :mod:`parsimon.report.section`); the world model's part is appended at the end."""
    from parsimon.gui.world_model.reproduce_part import extend_section, world_model_part
    from parsimon.report.section import Section

    section = Section(name="gui", paper="Mobile-Agent-v3.5 / GUI-Owl-1.5 (arXiv 2602.16855) and Computer-Using "
                      "World Model (arXiv 2602.17365)")
    return extend_section(section, world_model_part(ctx))
