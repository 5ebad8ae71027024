"""``parsimon gui wm train``: refit the learned world model and the value function on the whole store.

One :mod:`parsimon.run` run: read every transition of the store, fit
:class:`~parsimon.gui.world_model.learned.LearnedWorldModel` and
:class:`~parsimon.gui.world_model.value.ValueFunction`, write them where the search looks for them
(``$PARSIMON_HOME/gui/world_model/`` unless told otherwise), and record what they were fit on in
``metrics.json``. Each run of the flywheel (collect or evaluate with ``--transitions``, then train) adds
data and refits from scratch. Stores named as ``searched`` (the search's own episodes) feed the value
function's done model only (see :meth:`~parsimon.gui.world_model.value.ValueFunction.fit`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["train"]


def train(stores: list[str], *, model_dir: str | os.PathLike | None = None, value: bool = True,
          out_dir: str | os.PathLike | None = None, seed: int = 0, progress: bool = True,
          searched: list[str] = ()) -> dict[str, Any]:
    """Fit both models on the transitions below ``stores`` (empty: the default store); return what was written."""
    from parsimon.gui.world_model.learned import LearnedConfig, LearnedWorldModel, default_model_path
    from parsimon.gui.world_model.store import TransitionStore, default_store
    from parsimon.gui.world_model.value import ValueFunction, default_value_path
    from parsimon.run import default_out, start_run

    roots = [Path(s) for s in stores] or [default_store()]
    folder = Path(model_dir) if model_dir is not None else default_model_path().parent
    cfg = {"stores": [str(r) for r in roots], "searched": [str(s) for s in searched], "model_dir": str(folder),
           "value": value,
           "learned": LearnedConfig(seed=seed).__dict__}
    out = Path(out_dir) if out_dir is not None else default_out("gui wm train")
    with start_run("gui wm train", cfg, out_dir=out, seed=seed, progress=progress) as run:
        store = TransitionStore(roots)
        with run.step(f"reading {len(store.files())} transition logs"):
            transitions = list(store.transitions(screenshots=value))
        with run.step(f"fitting the learned world model on {len(transitions)} transitions"):
            model = LearnedWorldModel.fit(transitions, LearnedConfig(seed=seed))
            path = model.save(folder / default_model_path().name)
        res: dict[str, Any] = {"transitions": len(transitions), "effects": len(model.effects), "model": str(path),
                               "rows": model.trained_on["rows"]}
        if value:
            extra = list(TransitionStore([Path(s) for s in searched]).transitions()) if searched else []
            with run.step("fitting the value function" + (f" (and its done model on {len(extra)} searched "
                                                          "transitions)" if extra else "")):
                vf = ValueFunction.fit(transitions, seed=seed, done_transitions=extra)
                res["value"] = str(vf.save(folder / default_value_path().name))
                res["value_rows"] = vf.state["rows"]
                res["value_label"] = vf.state["label"]
                res["done_rows"] = vf.state["done_rows"]
        run.set_metrics(transitions=len(transitions), effects=len(model.effects), rows=model.trained_on["rows"],
                        fit_seconds=model.trained_on["seconds"], value_rows=res.get("value_rows", 0))
        run.write_json("trained.json", {**res, "effect_counts": model.trained_on["effect_counts"]})
        res["run_dir"] = str(run.dir)
        return res
