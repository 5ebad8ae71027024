"""Computer-Using World Model (CUWM, arXiv 2602.17365) on the GUI agent's pages.

Stage 1 predicts what an action changes as a typed delta on the frozen DOM with a change-only text
summary (:mod:`.delta`, :mod:`.summary`); stage 2 draws the predicted page with scripts off
(:mod:`.render`). World models: ``rule``, ``learned`` (fit to the transition store), ``llm``, ``oracle``
(:data:`WORLD_MODELS`). Test-time search proposes K candidates, imagines each, scores them and acts on
the best (:mod:`.search`).
"""

from __future__ import annotations

from parsimon.gui.world_model.base import Context, Prediction, WorldModel, target_element
from parsimon.gui.world_model.delta import (
    AddNode,
    Delta,
    Navigate,
    Op,
    PageState,
    RemoveNode,
    SetAttr,
    SetChecked,
    SetFocus,
    SetText,
    SetValue,
    apply,
    diff,
)
from parsimon.gui.world_model.learned import LearnedConfig, LearnedWorldModel
from parsimon.gui.world_model.llm import LLMWorldModel, LLMWorldModelConfig
from parsimon.gui.world_model.metrics import (
    action_match,
    calibration,
    delta_scores,
    render_fidelity,
    score_prediction,
    true_delta,
)
from parsimon.gui.world_model.oracle import OracleWorldModel
from parsimon.gui.world_model.registry import WORLD_MODELS
from parsimon.gui.world_model.render import Renderer
from parsimon.gui.world_model.rules import RuleWorldModel
from parsimon.gui.world_model.search import SearchConfig, SearchPolicy, build_search
from parsimon.gui.world_model.store import Transition, TransitionStore, default_store
from parsimon.gui.world_model.summary import summarize
from parsimon.gui.world_model.value import ValueFunction

__all__ = [
    "WORLD_MODELS", "AddNode", "Context", "Delta", "LLMWorldModel", "LLMWorldModelConfig", "LearnedConfig",
    "LearnedWorldModel", "Navigate", "Op", "OracleWorldModel", "PageState", "Prediction", "RemoveNode", "Renderer",
    "RuleWorldModel", "SearchConfig", "SearchPolicy", "SetAttr", "SetChecked", "SetFocus", "SetText", "SetValue",
    "Transition", "TransitionStore", "ValueFunction", "WorldModel", "action_match", "apply", "build_search",
    "calibration", "default_store", "delta_scores", "diff", "render_fidelity", "score_prediction", "summarize",
    "target_element", "true_delta",
]
