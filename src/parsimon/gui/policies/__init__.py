"""Policies: rule, proposal, random, replay, GUI-Owl over an endpoint, the constrained small-model policy, roles."""

from __future__ import annotations

from parsimon.gui.policies.base import POLICIES, Decision, Policy, render_output
from parsimon.gui.policies.guiowl import GUIOwlConfig, GUIOwlPolicy
from parsimon.gui.policies.proposal import ProposalPolicy, RandomPolicy, ScoredAction, propose
from parsimon.gui.policies.replay import ReplayPolicy, load_trajectories
from parsimon.gui.policies.roles import InfoPool, RolesPolicy
from parsimon.gui.policies.rule import RulePolicy
from parsimon.gui.policies.textpolicy import AXTreePolicy, AXTreePolicyConfig, action_schema

__all__ = [
    "POLICIES", "AXTreePolicy", "AXTreePolicyConfig", "Decision", "GUIOwlConfig", "GUIOwlPolicy", "InfoPool",
    "Policy", "ProposalPolicy", "RandomPolicy", "ReplayPolicy", "RolesPolicy", "RulePolicy", "ScoredAction",
    "action_schema", "load_trajectories", "propose", "render_output",
]
