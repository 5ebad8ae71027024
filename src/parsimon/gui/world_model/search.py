"""Test-time action search: propose K candidates, imagine each outcome, score them, act on the best.

:class:`SearchPolicy` wraps a proposal policy (one with ``candidates(obs, k)``, such as ``proposal``).
Each step:

1. the base policy proposes its top ``k`` candidate actions (CUWM uses 5);
2. the world model imagines each outcome (mode ``text``: the typed delta and its summary; ``render``:
   the imagined screenshot; ``text+render``: both; ``none``: nothing is imagined, the scorer sees the
   candidates alone, which is the search without a world model at the same K);
3. each candidate is scored by the value function learned from outcomes (:mod:`.value`) or by the
   policy as judge (:mod:`.judge`), minus ``irreversible_penalty`` when the candidate would do
   something the app marks irreversible, or replace the page, unless the instruction asks for it; the
   base policy's first choice is kept unless another candidate scores ``margin`` more (the scorer
   overrides the policy only when it is clearly surer). Stopping (``answer``/``terminate``) is the base
   policy's to offer: it is a candidate only when the base ranks it first, and is then scored like the
   others (its imagined outcome changes nothing), so the scorer can overrule a premature stop
   (``stop="scored"``, the default; ``stop="done"`` scores it by the value function's done model, the
   chance that the task is done now; ``stop="policy"`` takes the base's stop as is);
4. only the best candidate is executed, in the real environment (the world model is advisory);
5. at the next step the prediction for the executed action is compared with what really happened and
   the error is appended to the transition store (``predictions.jsonl``).

Predictions less confident than ``min_confidence`` are withheld from the scorer (it then sees the
candidate as in mode ``none``).

The done check (the value scorer with a done model; ``done_check``, by default
:data:`DEFAULT_DONE_CHECK` whenever the value function has a done model, 0 to turn it off): each step
after the first begins with the done model's reading of the current page, and when the chance that the
task is done now reaches the threshold the search stops there, whatever the proposal ranks first.
Without it a searched episode goes on after its task is done whenever some candidate promises progress
(14 of the 44 failed episodes of an earlier benchmark's apps rows had solved their task and never
stopped); the done model reads that from the page, best when it was also fit on the search's own
episodes (``parsimon gui wm train --searched DIR``).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from parsimon.errors import ConfigError, MalformedReply
from parsimon.gui.actions import Action
from parsimon.gui.policies.base import Decision, Policy, render_output
from parsimon.gui.world_model.base import Context, Prediction, target_element
from parsimon.gui.world_model.delta import Navigate, PageState, apply
from parsimon.gui.world_model.value import MODES, Trail, done_features, goal_words, value_features

__all__ = ["DEFAULT_DONE_CHECK", "SCORERS", "STOPS", "SearchConfig", "SearchPolicy", "build_search", "irreversible", "make_world_model", "search_config",
           "wrap_policy"]

SCORERS = ("value", "judge")
STOPS = ("scored", "done", "policy")  # what becomes of a stop the base policy ranks first (SearchConfig.stop)
# The done check's threshold when SearchConfig.done_check is left unset and the value function has a done
# model (chosen on the development seeds 200-205; every threshold from 0.5 to 0.95 replayed the same there).
DEFAULT_DONE_CHECK = 0.5


@dataclass(frozen=True)
class SearchConfig:
    """Settings of the search (CUWM's protocol where it has one)."""

    world_model: str = "learned"  # a name in WORLD_MODELS
    k: int = 5  # candidates per step (CUWM: 5)
    mode: str = "text"  # none | text | render | text+render (CUWM's none / text / image / text+image)
    scorer: str = "value"  # value (learned from outcomes) | judge (the policy as judge, an LLM)
    irreversible_penalty: float = 1.0  # subtracted from the score of an unrequested irreversible action
    margin: float = 0.15  # how much more another candidate must score to replace the first choice
    stop: str = "scored"  # scored: the scorer may overrule the base policy's stop | done: scored by the done
    # model, P(the task is done now) | policy: the base decides
    min_confidence: float = 0.0  # predictions below this confidence are not shown to the scorer
    done_check: float | None = None  # stop when the done model's P(the task is done now) reaches this (0: off;
    # None: DEFAULT_DONE_CHECK when the value scorer's value function has a done model, else off)
    log_errors: bool = True  # append prediction errors to the transition store
    world_model_path: str = ""  # the learned model's file ("": the default in $PARSIMON_HOME)
    value_path: str = ""  # the value function's file ("": the default in $PARSIMON_HOME)

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ConfigError(f"`k` must be >= 1, got {self.k}")
        if self.mode not in MODES:
            raise ConfigError(f"`mode` must be one of {list(MODES)}, got {self.mode!r}")
        if self.scorer not in SCORERS:
            raise ConfigError(f"`scorer` must be one of {list(SCORERS)}, got {self.scorer!r}")
        if self.irreversible_penalty < 0:
            raise ConfigError(f"`irreversible_penalty` must be >= 0, got {self.irreversible_penalty}")
        if self.stop not in STOPS:
            raise ConfigError(f"`stop` must be one of {list(STOPS)}, got {self.stop!r}")
        if self.margin < 0:
            raise ConfigError(f"`margin` must be >= 0, got {self.margin}")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ConfigError(f"`min_confidence` must lie in [0, 1], got {self.min_confidence}")
        if self.done_check is not None and not 0.0 <= self.done_check <= 1.0:
            raise ConfigError(f"`done_check` must lie in [0, 1] (0: off), got {self.done_check}")


def irreversible(obs: Any, action: Action, prediction: Prediction | None) -> bool:
    """Whether the candidate would do something that cannot be undone and the instruction does not ask for:
    act on an element the app marks irreversible, or (predicted) replace the page."""
    el = target_element(obs, action)
    risky = bool(el is not None and el.irreversible and action.kind in ("click", "double_click", "long_press"))
    if prediction is not None:
        risky = risky or any(isinstance(op, Navigate) and op.html is not None for op in prediction.delta.ops)
    if not risky:
        return False
    label = (el.label if el is not None else "") or ""
    return not (goal_words(label) & goal_words(obs.goal))


class SearchPolicy(Policy):
    """See the module docstring.

    Args:
        base: The proposal policy (needs ``candidates(obs, k)``).
        world_model: A :class:`~parsimon.gui.world_model.base.WorldModel` (None in mode ``none``).
        config: :class:`SearchConfig`.
        value: A :class:`~parsimon.gui.world_model.value.ValueFunction` (scorer ``value``).
        judge: A :class:`~parsimon.gui.world_model.judge.Judge` (scorer ``judge``).
        renderer: A :class:`~parsimon.gui.world_model.render.Renderer` (render modes; one is made if None).
        store: A :class:`~parsimon.gui.world_model.store.TransitionStore` for the prediction errors.
        session: A browser session for the renderer and the oracle, or a function returning one (such as
            ``lambda: env.session``: Playwright's sync API allows one driver per thread, so share the
            environment's). None: one is started when needed.
    """

    name = "search"

    def __init__(self, base: Policy, world_model: Any = None, config: SearchConfig | None = None, *,
                 value: Any = None, judge: Any = None, renderer: Any = None, store: Any = None,
                 session: Any = None) -> None:
        self.config = cfg = config or SearchConfig()
        if not hasattr(base, "candidates"):
            raise ConfigError(f"search needs a policy that proposes candidates (such as 'proposal'), not "
                              f"{getattr(base, 'name', type(base).__name__)!r}")
        if cfg.mode != "none" and world_model is None and cfg.k > 1:
            raise ConfigError(f"search mode {cfg.mode!r} needs a world model")
        if cfg.scorer == "value" and value is None and cfg.k > 1:
            raise ConfigError("the value scorer needs a value function (train one with `parsimon gui wm train`)")
        for what, on in (("`stop='done'`", cfg.stop == "done"), ("`done_check`", bool(cfg.done_check))):
            if on and cfg.k > 1 and (cfg.scorer != "value" or not getattr(value, "has_done", False)):
                raise ConfigError(f"{what} needs the value scorer with a done model (a value function written by "
                                  "this version: retrain it with `parsimon gui wm train`)")
        if cfg.scorer == "judge" and judge is None and cfg.k > 1:
            raise ConfigError("the judge scorer needs a Judge (a chat model)")
        self.base, self.world_model, self.value, self.judge = base, world_model, value, judge
        # the done check's threshold in force (0: off)
        self.done_check = cfg.done_check if cfg.done_check is not None else (
            DEFAULT_DONE_CHECK if cfg.scorer == "value" and getattr(value, "has_done", False) else 0.0)
        self._renderer, self._session, self._own_session = renderer, session, False
        self.store = store
        self.name = f"search-{cfg.world_model if cfg.mode != 'none' else 'none'}-{cfg.mode}-k{cfg.k}"
        self.history: list[Action] = []
        self.trail = Trail()
        self.context = Context()
        self._pending: tuple[Any, Prediction] | None = None
        self.log: list[dict[str, Any]] = []

    # -- browser for the renderer and the oracle
    @property
    def session(self) -> Any:
        """The browser session for imagination (started on first use)."""
        if callable(self._session) and not hasattr(self._session, "new_context"):
            self._session = self._session()
        if self._session is None:
            from parsimon.gui.web.browser import BrowserSession

            self._session = BrowserSession()
            self._own_session = True
        return self._session

    @property
    def renderer(self) -> Any:
        """The stage-2 renderer (made on first use)."""
        if self._renderer is None:
            from parsimon.gui.world_model.render import Renderer

            self._renderer = Renderer(self.session)
        return self._renderer

    def reset(self, goal: str, info: dict[str, Any]) -> None:  # noqa: D102
        self.base.reset(goal, info)
        self.history = []
        self.trail = Trail()
        self._pending = None
        task = None
        name = str(info.get("task", ""))
        if "/" in name and self.config.world_model == "oracle" and self.config.mode != "none":
            from parsimon.gui.registry import SUITES

            suite, _, task_name = name.partition("/")
            task = SUITES.get(suite)().task(task_name)
        self.context = Context(task=task, seed=info.get("seed"), history=(),
                               session=self.session if self.config.world_model == "oracle" else None)

    def _imagine(self, obs: Any, actions: list[Action]) -> list[Prediction | None]:
        cfg = self.config
        if cfg.mode == "none" or self.world_model is None:
            return [None] * len(actions)
        self.context.history = tuple(self.history)
        preds = self.world_model.predict_many(obs, actions, self.context)
        if "render" in cfg.mode:
            before = PageState.from_observation(obs)
            phone = None
            for p in preds:
                if p.image is not None:
                    continue
                el = target_element(obs, p.action)
                res = self.renderer.render(apply(before, p.delta, strict=False), obs.size, phone=phone,
                                           delta=p.delta, pointer=el.center if el is not None else None,
                                           keyboard_focus=p.action.kind == "key")
                p.image, p.render_flags = res.png, res.flags
        return [p if p.confidence >= cfg.min_confidence else None for p in preds]

    def _scores(self, obs: Any, cands: list[Any], preds: list[Prediction | None]) -> tuple[list[float], str]:
        cfg = self.config
        if cfg.scorer == "judge":
            options = []
            for c, p in zip(cands, preds, strict=True):
                opt: dict[str, Any] = {"action": c.action.describe()}
                if p is not None and "text" in cfg.mode:
                    opt["predicted_state_text"] = p.delta.summary
                if p is not None and "render" in cfg.mode and p.image is not None:
                    opt["predicted_state_image"] = p.image
                options.append(opt)
            try:
                idx, thought = self.judge.choose(obs.goal, obs.axtree or obs.som_text(), options, obs.screenshot)
            except MalformedReply as exc:
                return [c.score for c in cands], f"judge failed ({exc}); fell back to the proposal order"
            return [1.0 if i == idx else 0.0 for i in range(len(cands))], thought
        rows = []
        for rank, (c, p) in enumerate(zip(cands, preds, strict=True)):
            mode = cfg.mode if p is not None else "none"
            rows.append((mode, value_features(mode, obs, c.action, score=c.score, rank=rank, k=cfg.k,
                                              history=self.history, delta=p.delta if p else None,
                                              confidence=p.confidence if p else 1.0, image=p.image if p else None,
                                              flags=p.render_flags if p else (), trail=self.trail)))
        scores = [0.0] * len(rows)
        for mode in {m for m, _ in rows}:
            idx = [i for i, (m, _) in enumerate(rows) if m == mode]
            for i, s in zip(idx, self.value.score(mode, [rows[i][1] for i in idx]), strict=True):
                scores[i] = s
        if cands[0].action.terminal and cfg.stop == "done":
            # a stop is worth the chance that the task is done now
            best_other = max((c.score for c in cands[1:]), default=-5.0)
            scores[0] = self.value.done(done_features(obs, self.history, self.trail, 0, best_other))
        return scores, ""

    def act(self, obs: Any, info: dict[str, Any]) -> Decision:  # noqa: D102
        cfg = self.config
        if self._pending is not None:
            self._log_error(obs)
        t0 = time.perf_counter()
        self.trail.see(obs)
        check = self.done_check > 0 and cfg.k > 1 and bool(self.history)
        # the done model's stop rank was computed on the whole ranking and caps at 5: six candidates see it
        cands = self.base.candidates(obs, max(cfg.k + 1, 6) if check else cfg.k + 1)
        # a checked step's record says the threshold in force and the done model's reading
        checked: dict[str, float] = {}
        if check:
            stop_rank = next((i for i, c in enumerate(cands) if c.action.terminal), len(cands))
            others = [c.score for c in cands if not c.action.terminal]
            p_done = self.value.done(done_features(obs, self.history, self.trail, stop_rank,
                                                   others[0] if others else -5.0))
            checked = {"done_p": round(p_done, 4), "done_check": self.done_check}
            if p_done >= self.done_check:
                a = Action("terminate", status="success")
                self.history.append(a)
                if hasattr(self.base, "history"):
                    self.base.history.append(a)
                return Decision(a, render_output(a, f"search: the done model reads the task as done (p={p_done:.2f})"),
                                confidence=p_done, meta={**checked, "search_s": time.perf_counter() - t0})
        cands = cands[: cfg.k + 1]
        # stopping is the base policy's to offer: a terminal candidate stays only when the base ranks it first
        if cands and not cands[0].action.terminal:
            cands = [c for c in cands if not c.action.terminal]
        cands = cands[: cfg.k]
        if not cands:
            a = Action("terminate", status="failure")
            self.history.append(a)
            return Decision(a, render_output(a, "no candidates"), meta={"candidates": 0, **checked})
        if len(cands) == 1 or cfg.k == 1 or (cands[0].action.terminal and cfg.stop == "policy"):
            best, preds, scores, thought = 0, [None] * len(cands), [c.score for c in cands], ""
        else:
            t_im = time.perf_counter()
            preds = self._imagine(obs, [c.action for c in cands])
            imagine_s = time.perf_counter() - t_im
            scores, thought = self._scores(obs, cands, preds)
            penalties = [cfg.irreversible_penalty * irreversible(obs, c.action, p) for c, p in zip(cands, preds,
                                                                                                  strict=True)]
            final = [s - q for s, q in zip(scores, penalties, strict=True)]
            best = max(range(len(cands)), key=lambda i: (final[i] + (cfg.margin if i == 0 else 0.0), -i))
            scores = final
            self.log.append({"step": len(self.history) + 1, "imagine_s": imagine_s,
                             "decide_s": time.perf_counter() - t0, "k": len(cands),
                             "irreversible_avoided": int(penalties[0] > 0 and penalties[best] == 0)})
        chosen = cands[best]
        self.history.append(chosen.action)
        self.trail.took(obs, chosen.action)
        if hasattr(self.base, "history"):
            self.base.history.append(chosen.action)
        pred = preds[best]
        if pred is None and cfg.log_errors and self.world_model is not None and self.store is not None \
                and cfg.mode != "none":
            pred = self.world_model.predict(obs, chosen.action, self.context)
        self._pending = (obs, pred) if pred is not None else None
        note = f"search: option {best} of {len(cands)}" + (f" ({thought})" if thought else "")
        if len(cands) > 1:
            note += " [" + "; ".join(f"{c.action.describe()}={s:.2f}" for c, s in zip(cands, scores, strict=True)) + "]"
        meta = {"candidates": [c.action.to_dict() for c in cands], "scores": [round(s, 4) for s in scores],
                "chosen": best, **checked, "search_s": time.perf_counter() - t0}
        if pred is not None:
            meta["predicted"] = pred.delta.summary
        return Decision(chosen.action, render_output(chosen.action, note), thought=thought or None,
                        confidence=max(0.0, min(1.0, scores[best])) if cfg.k > 1 else None, meta=meta)

    def _log_error(self, obs: Any) -> None:
        from parsimon.gui.world_model.metrics import score_prediction, true_delta

        before, pred = self._pending
        self._pending = None
        if self.store is None or not self.config.log_errors:
            return
        b = PageState.from_observation(before)
        truth = true_delta(b, PageState.from_observation(obs))
        s = score_prediction(b, pred.delta, truth)
        self.store.log_prediction({"world_model": pred.model, "goal": before.goal, "url": before.url,
                                   "step": len(self.history), "action": pred.action.to_dict(),
                                   "predicted": pred.delta.to_dict(), "true": truth.to_dict(),
                                   "confidence": pred.confidence, **asdict(s)})

    def close(self) -> None:  # noqa: D102
        self.base.close()
        if self.world_model is not None:
            self.world_model.close()
        if self.judge is not None:
            self.judge.close()
        if self._renderer is not None:
            self._renderer.close()
        if self._own_session and self._session is not None:
            self._session.close()
            self._session = None


def make_world_model(name: str, path: str = "", **kwargs: Any) -> Any:
    """A world model by registry name (``path``: the learned model's file)."""
    from parsimon.gui.world_model.base import WORLD_MODELS

    factory = WORLD_MODELS.get(name)
    if name == "learned":
        return factory(path or None)
    return factory(**kwargs)


def search_config(settings: str | dict[str, Any]) -> SearchConfig:
    """A :class:`SearchConfig` from a JSON object (or a dict); :class:`ConfigError` names a bad field."""
    import json

    if isinstance(settings, str):
        try:
            settings = json.loads(settings)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"`search` must be a JSON object, got {settings!r} ({exc.msg})") from None
    if not isinstance(settings, dict):
        raise ConfigError(f"`search` must be a JSON object, got {settings!r}")
    known = set(SearchConfig.__dataclass_fields__)
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ConfigError(f"`search`: unknown setting(s) {unknown}; accepted: {sorted(known)}")
    from parsimon.gui.world_model.registry import WORLD_MODELS

    cfg = SearchConfig(**settings)
    WORLD_MODELS.get(cfg.world_model)
    return cfg


def wrap_policy(policy: Policy, settings: str | dict[str, Any], store_dir: Any, *, session: Any = None) -> SearchPolicy:
    """``policy`` wrapped in the search ``settings`` name (a JSON object of :class:`SearchConfig` fields), with
    its prediction errors logged to the store at ``store_dir`` (the hook of ``parsimon gui eval``)."""
    from parsimon.gui.world_model.store import TransitionStore

    return build_search(policy, search_config(settings), store=TransitionStore(store_dir), session=session)


def build_search(base: Policy, config: SearchConfig, *, store: Any = None, client: Any = None,
                 session: Any = None) -> SearchPolicy:
    """A :class:`SearchPolicy` around ``base`` with the world model, value function or judge ``config`` names.

    Args:
        base: The proposal policy.
        config: The search settings.
        store: Where prediction errors go (a :class:`~parsimon.gui.world_model.store.TransitionStore`).
        client: A chat client for the ``llm`` world model and the judge (the local model by default).
        session: The browser session to imagine in, or a function returning it (see :class:`SearchPolicy`).
    """
    from parsimon.gui.world_model.value import ValueFunction

    wm = None
    if config.mode != "none" and config.k > 1:
        extra = {"client": client} if config.world_model == "llm" and client is not None else {}
        wm = make_world_model(config.world_model, config.world_model_path, **extra)
    value = judge = None
    if config.k > 1:
        if config.scorer == "value":
            value = ValueFunction(config.value_path or None)
        else:
            from parsimon.gui.world_model.judge import Judge

            judge = Judge(client, images="render" in config.mode)
    return SearchPolicy(base, wm, config, value=value, judge=judge, store=store, session=session)
