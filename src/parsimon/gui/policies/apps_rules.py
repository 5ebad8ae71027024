"""Placeholder replaced below."""

from __future__ import annotations


def apps_rule(obs, mem):
    """Filled in with the apps suite."""
    return None
