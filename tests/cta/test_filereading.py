"""FILEREADING: prior, generator, estimator, planner (vs brute force), env, policies, loader, evaluation."""

from __future__ import annotations

import io
import itertools
import json

import numpy as np
import pytest

from parsimon.cta import evaluate
from parsimon.cta.filereading import (
    CONFIGS,
    RHOS,
    Dataset,
    FileReadingEnv,
    FormatPlanner,
    brute_force_value,
    check_answer,
    load_tasks,
    parse_action,
    policy_value,
    save_tasks,
    solution_code,
    true_prior,
)
from parsimon.cta.filereading.generator import make_base_tasks, make_csv, run_query
from parsimon.cta.filereading.prior import (
    OPTIONS,
    adversarial_prior,
    argmax_format,
    features_of,
    joint,
    noisy_prior,
    parse_released_prior,
    uniform_prior,
)


def assert_close(out, ref, rtol=1e-9, atol=0.0):
    assert out == pytest.approx(ref, rel=rtol, abs=atol), (out, ref)


# ------------------------------------------------------------------------------------------------- prior
def test_true_prior_matches_released_values():
    # Values stored in the paper's released test file for along_eu_tsv_sas.tsv and tend_tsv.tsv.
    p = true_prior("along_eu_tsv_sas.tsv")
    assert_close(p["delimiter"][","], 0.09329277097467355, rtol=1e-12)
    assert_close(p["delimiter"][";"], 0.5643883753749915, rtol=1e-12)
    assert_close(p["delimiter"]["\t"], 0.342318853650335, rtol=1e-12)
    assert_close(p["quotechar"]["'"], 0.8175744761936435, rtol=1e-12)
    assert_close(p["skiprows"][0], 0.6899744811276125, rtol=1e-12)
    q = true_prior("tend_tsv.tsv")
    assert_close(q["delimiter"]["\t"], 0.6529913036773364, rtol=1e-12)
    assert_close(q["quotechar"]['"'], 0.6224593312018545, rtol=1e-12)
    assert_close(q["skiprows"][0], 0.8175744761936437, rtol=1e-12)
    # mean probability of the most likely option over the 16 feature combinations x 3 attributes
    tops = []
    for bits in itertools.product([False, True], repeat=4):
        pr = true_prior(dict(zip(("has_eu", "has_tsv", "has_sas", "has_cn"), bits, strict=True)))
        tops += [max(pr[a].values()) for a in pr]
    assert_close(float(np.mean(tops)), 0.688, atol=1e-3)
    assert features_of("x_zh_sas.csv") == {"has_eu": False, "has_tsv": False, "has_sas": True, "has_cn": True}


def test_prior_variants_and_released_parser():
    est = true_prior("a_eu.csv")
    adv = adversarial_prior(est)
    for a in adv:
        worst = min(OPTIONS[a], key=lambda o, a=a: est[a][o])
        assert adv[a][worst] == 0.95
    r1, r2 = noisy_prior(est, np.random.default_rng(3)), noisy_prior(est, np.random.default_rng(3))
    assert r1 == r2 and all(sorted(r1[a].values()) == sorted(est[a].values()) for a in est)
    txt = ("delimiter: {',': 0.09639397, ';': 0.69766706, '\\t': 0.20593891}, quotechar: {'\"': 0.22118935, "
           "\"'\": 0.77881068}, skiprows: {0: 0.57813656, 1: 0.42186341}")
    rel = parse_released_prior(txt)
    assert argmax_format(rel) == (";", "'", 0)
    assert_close(sum(rel["delimiter"].values()), 1.0, atol=1e-12)
    assert_close(joint(uniform_prior()).sum(), 1.0, atol=1e-12)
    with pytest.raises(ValueError, match="skiprows"):
        parse_released_prior("delimiter: {',': 1.0}, quotechar: {'\"': 1.0}")


# --------------------------------------------------------------------------------------------- generator
def test_base_tasks_splits_balance_and_determinism():
    base = make_base_tasks(2000, seed=0)
    splits = [b.split for b in base]
    assert (splits.count("train"), splits.count("val"), splits.count("test")) == (1400, 300, 300)
    combos = {}
    for b in base:
        combos[tuple(b.features.values())] = combos.get(tuple(b.features.values()), 0) + 1
        assert features_of(b.filename) == b.features
        assert b.filename.endswith(".tsv") == b.features["has_tsv"]
        assert 0.35 <= b.d_unit <= 0.95 and round(b.d_unit, 2) == b.d_unit
    assert sorted(combos.values()) == [125] * 16
    assert len({b.base_id for b in base}) == 2000
    again = make_base_tasks(2000, seed=0)
    assert [(b.filename, b.fmt, b.d_unit) for b in again[:50]] == [(b.filename, b.fmt, b.d_unit) for b in base[:50]]
    assert make_base_tasks(2000, seed=1)[0].filename != base[0].filename or make_base_tasks(2000, seed=1)[1].fmt != base[1].fmt
    # the sampled formats follow the prior: empirical share of the argmax option ≈ 0.67
    hit = np.mean([argmax_format(true_prior(b.features))[i] == b.fmt[i] for b in base for i in range(3)])
    assert 0.63 < hit < 0.71
    with pytest.raises(ValueError, match="d_range"):
        make_base_tasks(10, d_range=(0.9, 0.2))


def test_csv_only_true_format_answers(tmp_path):
    ds = Dataset(seed=1, n=48, data_root=tmp_path)
    tasks = ds.tasks("test", n_base=6)
    assert len(tasks) == 6 * len(RHOS) and {t.rho for t in tasks} == set(RHOS)
    seen_q = set()
    for t in tasks[:: len(RHOS)]:
        text = t.csv_path.read_text()
        seen_q.add(t.query_type)
        if t.fmt[2] == 1:
            assert text.splitlines()[0].startswith("# data export")
        assert "None" in text
        qcols = [c for c in t.instruction.split("`")[1::2]]
        got = run_query(io.StringIO(text), t.fmt, t.query_type, qcols)
        assert check_answer(str(got), t.answer, t.query_type)
        for cfg in CONFIGS:
            if cfg != t.fmt:
                with pytest.raises(Exception):  # noqa: B017 - any failure: parse error, missing column, ...
                    run_query(io.StringIO(text), cfg, t.query_type, qcols)
        assert abs(t.d_code - t.d_unit ** t.rho) < 1e-12
    # regeneration is deterministic
    text2, _ = make_csv(ds.split("test")[0])
    assert text2 == tasks[0].csv_path.read_text()
    assert seen_q <= {"max", "mean", "min"}


def test_prior_estimator_accuracy():
    ds = Dataset(seed=0)
    est = ds.estimator()
    test = ds.split("test")
    acc = est.accuracy([b.filename for b in test], [b.fmt for b in test])
    assert 0.6 <= acc["mean"] <= 0.72, acc  # the paper's BERT reaches 0.67
    p = est.predict(test[0].filename)
    assert_close(sum(p["delimiter"].values()), 1.0, atol=1e-9)


# ----------------------------------------------------------------------------------------------- planner
def test_planner_matches_brute_force_small_instances():
    rng = np.random.default_rng(0)
    cfg4 = list(itertools.product((0, 1), ("a", "b")))
    for _ in range(6):
        p = rng.dirichlet(np.ones(4) * 0.7)
        du, dc = rng.uniform(0.2, 1.0, 2)
        for T in (2, 3, 4, 5):
            pl = FormatPlanner(p, du, dc, max_turns=T, configs=cfg4, attrs=("x", "y"))
            bf = brute_force_value(p, du, dc, max_turns=T, configs=cfg4)
            assert_close(pl.value(), bf, rtol=1e-10, atol=1e-12)
            assert_close(policy_value(pl), pl.value(), rtol=1e-10, atol=1e-12)
    cfg6 = list(itertools.product((0, 1, 2), (0, 1)))
    for T in (2, 3, 4):
        p = rng.dirichlet(np.ones(6))
        pl = FormatPlanner(p, 0.8, 0.55, max_turns=T, configs=cfg6, attrs=("x", "y"))
        assert_close(pl.value(), brute_force_value(p, 0.8, 0.55, max_turns=T, configs=cfg6), rtol=1e-10)
    # the full 12-format problem, short horizons
    for T in (2, 3):
        p = rng.dirichlet(np.ones(12))
        pl = FormatPlanner(p, 0.7, 0.5, max_turns=T)
        assert_close(pl.value(), brute_force_value(p, 0.7, 0.5, max_turns=T, configs=CONFIGS), rtol=1e-10)


def test_planner_structure_and_errors():
    pr = true_prior("x_eu_tsv.tsv")
    # forward evaluation of the realised policy equals the DP value, with the paper's turn limit
    for rho in RHOS:
        pl = FormatPlanner(pr, 0.6, 0.6 ** rho)
        assert_close(policy_value(pl), pl.value(), rtol=1e-10)
        # never worse than either static policy under its own prior
        g = argmax_format(pr)
        pj = joint(pr)
        code_first = sum(pj[i] * (pl.d_code if c == g else 0.6 ** 3 * pl.d_code ** 2) for i, c in enumerate(CONFIGS))
        assert pl.value() >= max(code_first, 0.6 ** 3 * pl.d_code) - 1e-12
    # cheap code -> code first; expensive code -> test first
    assert FormatPlanner(pr, 0.9, 0.9 ** 0.5).solve()[1].kind == "code"
    assert FormatPlanner(pr, 0.9, 0.9 ** 8).solve()[1].kind == "test"
    # a certain prior: code at once, value d_code
    cert = {"delimiter": {",": 1, ";": 0, "\t": 0}, "quotechar": {'"': 1, "'": 0}, "skiprows": {0: 1, 1: 0}}
    pl = FormatPlanner(cert, 0.5, 0.7)
    assert_close(pl.value(), 0.7, rtol=1e-9)
    acts, rew = pl.rollout((";", "'", 1))  # the prior was wrong: the planner still finds it
    assert acts[-1].kind == "answer" and rew > 0
    with pytest.raises(ValueError, match="d_unit"):
        FormatPlanner(pr, 0.0, 0.5)
    with pytest.raises(ValueError, match="max_turns"):
        FormatPlanner(pr, 0.5, 0.5, max_turns=0)


# --------------------------------------------------------------------------------------------- env
@pytest.fixture(scope="module")
def small_tasks(tmp_path_factory):
    root = tmp_path_factory.mktemp("fr_data")
    return Dataset(seed=2, n=40, data_root=root).tasks("test", n_base=3)


def test_parse_action():
    assert parse_action('UNIT_TESTS: test_delimiter("f.csv"), test_skiprows("f.csv")') == ("tests", ["delimiter", "skiprows"])
    assert parse_action("<think>CODE?</think>\nANSWER: 3.5") == ("answer", "3.5")
    kind, code = parse_action("CODE\n```python\nprint(1)\n```")
    assert kind == "code" and code.strip() == "print(1)"
    assert parse_action("hello") is None
    assert parse_action("UNIT_TESTS: none") is None
    assert check_answer("`abc`", "abc", "max") and not check_answer("abd", "abc", "max")
    assert check_answer("1.004", 1.0, "mean") and not check_answer("1.02", 1.0, "min")
    assert not check_answer("n/a", 1.0, "mean")


def test_env_episode_rewards_and_errors(small_tasks):
    t = small_tasks[1]
    env = FileReadingEnv()
    obs, info = env.reset(options={"task": t})
    assert t.filename in obs and t.instruction in obs
    obs, r, term, trunc, info = env.step("do something")
    assert not info["valid"] and r == 0 and not term and info["t"] == 1
    obs, r, term, trunc, info = env.step('UNIT_TESTS: test_delimiter("x"), test_quotechar("x"), test_skiprows("x")')
    assert info["tests"] == dict(zip(("delimiter", "quotechar", "skiprows"), t.fmt, strict=True))
    assert info["costs"] == {"unit_test": 3}
    code = solution_code(t.filename, t.fmt, t.instruction, t.query_type)
    obs, r, term, trunc, info = env.step("CODE\n```python\n" + code + "```")
    assert info["code_ok"] and "RESULT:" in obs
    ans = [ln for ln in info["stdout"].splitlines() if ln.startswith("RESULT:")][0].split(":", 1)[1].strip()
    obs, r, term, trunc, info = env.step(f"ANSWER: {ans}")
    assert term and info["episode"]["correct"] == 1.0
    assert_close(r, t.d_unit ** 3 * t.d_code, rtol=1e-12)
    assert info["episode"]["U"] == 3 and info["episode"]["C"] == 1 and info["episode"]["guess_and_go"] == 0.0
    # wrong format fails, a wrong answer scores 0, the turn limit truncates
    env = FileReadingEnv(max_turns=3)
    env.reset(options={"task": t})
    wrong = next(c for c in CONFIGS if c != t.fmt)
    _, _, _, _, info = env.step("CODE\n```python\n" + solution_code(t.filename, wrong, t.instruction, t.query_type) + "```")
    assert info["code_ok"] is False
    _, r, term, trunc, info = env.step("ANSWER: 12345")
    assert term and r == 0.0 and info["episode"]["guess_and_go"] == 1.0
    env.reset(options={"task": t})
    for _ in range(3):
        _, r, term, trunc, info = env.step('UNIT_TESTS: test_delimiter("f")')
    assert trunc and r == 0.0 and info["episode"]["U"] == 3


def test_sandbox_limits_and_run_goes_on(small_tasks):
    from parsimon.cta.filereading.sandbox import Sandbox

    sb = Sandbox(timeout=1.5, memory_mb=200)
    env = FileReadingEnv(sandbox=sb, cache_exec=False)
    t = small_tasks[0]
    bad = {"loop": "while True:\n    pass\n", "memory": "x = bytearray(2 * 1024 ** 3)\nprint(len(x))\n",
           "socket": "import socket\nsocket.create_connection(('127.0.0.1', 9))\n",
           "raw_socket": "import socket\ns = socket.socket()\n", "sleep": "import time\ntime.sleep(60)\n",
           "subprocess": "import subprocess\nprint(subprocess.run(['echo', 'hi'], capture_output=True).stdout)\n",
           "system": "import os\nos.system('echo hi')\n"}
    for name, code in bad.items():
        env.reset(options={"task": t})
        _, _, _, _, info = env.step("CODE\n```python\n" + code + "```")
        assert info["code_ok"] is False, name
        _, r, term, _, info = env.step("ANSWER: 0")
        assert term and r == 0.0
        if name in ("loop", "sleep"):
            assert info["episode"]["C"] == 1
    assert env.exec_stats["timeouts"] == 2 and env.exec_stats["memory_kills"] == 1
    # the next episode runs normally and reads the file
    env.reset(options={"task": t})
    _, _, _, _, info = env.step("CODE\n```python\n" + solution_code(t.filename, t.fmt, t.instruction, t.query_type) + "```")
    assert info["code_ok"]
    res = sb.run("import os\nprint(os.getcwd())\nopen('scratch.txt','w').write('x')")
    assert res.ok and res.stdout.strip() in ("/scratch",) or "parsimon-sbx-" in res.stdout
    assert res.isolation == sb.isolation
    sb.close()


def test_sandbox_backend_argument_removed_with_a_message():
    from parsimon.cta.filereading.sandbox import Sandbox

    with pytest.raises(ValueError, match="backend` was removed"):
        Sandbox(backend="spawn")
    with Sandbox(timeout=5, memory_mb=200) as sb:
        assert sb.run("print(6 * 7)").stdout.strip() == "42"
        r = sb.run("import socket\nsocket.socket()")
        assert not r.ok and "PermissionError" in r.stderr


# ------------------------------------------------------------------------------------ policies / evaluate
def test_policies_via_evaluate(small_tasks, tmp_path):
    res = {}
    for pol, prior in (("oracle", None), ("cta-planner", "true"), ("test-then-code", None), ("code-first", "true"),
                       ("uniform-prior", None)):
        m = evaluate("filereading", pol, small_tasks, prior=prior, out_dir=tmp_path / pol)
        res[pol] = m
        assert m.n_tasks == len(small_tasks) and set(m.per_rho) == set(RHOS)
        assert m.summary["correct"] == 1.0  # every scripted policy finds the answer on these tasks
    assert res["oracle"].match_rate == 1.0 and res["cta-planner"].match_rate == 1.0
    for e in res["test-then-code"].episodes:
        t = next(x for x in small_tasks if x.task_id == e.task_id)
        assert_close(e.reward, t.d_unit ** 3 * t.d_code, rtol=1e-12)
    # realised reward equals the planner's rollout reward on each task
    for e in res["oracle"].episodes:
        t = next(x for x in small_tasks if x.task_id == e.task_id)
        _, rew = FormatPlanner(true_prior(t.features), t.d_unit, t.d_code).rollout(t.fmt)
        assert_close(e.reward, rew, rtol=1e-12)
    d = json.loads((tmp_path / "oracle" / "metrics.json").read_text())
    assert {"mean_reward", "match_rate", "n_tasks"} <= set(d)
    assert {f"per_rho/{float(r)}/mean_reward" for r in RHOS} <= set(d)
    with pytest.raises(ValueError, match="released"):
        evaluate("filereading", "cta-planner", small_tasks[:1], prior="released")


def _released_text(fmt):
    # a calib_pred_prior text dict (the paper's layout) with 0.7 on the true values
    parts = []
    for i, a in enumerate(("delimiter", "quotechar", "skiprows")):
        opts = OPTIONS[a]
        d = {o: (0.7 if o == fmt[i] else round(0.3 / (len(opts) - 1), 4)) for o in opts}
        parts.append(f"{a}: {d!r}")
    return ", ".join(parts)


def test_loader_ours_and_paper_format(small_tasks, tmp_path):
    root = small_tasks[0].data_root
    p = save_tasks(small_tasks, tmp_path / "tasks.jsonl")
    back = load_tasks(p, data_root=root)
    assert [t.task_id for t in back] == [t.task_id for t in small_tasks]
    assert back[0].fmt == small_tasks[0].fmt and back[0].csv_path.is_file()
    t = small_tasks[0]
    paper = {"task_id": f"{t.base_id}_0.5", "filename": t.filename, "features": t.features,
             "priors": {"Delimiter": {",": 0.2, ";": 0.5, "\t": 0.3}, "Quotechar": {'"': 0.5, "'": 0.5},
                        "Skiprows": {"0": 0.5, "1": 0.5}},
             "sampled_format": {"Delimiter": t.fmt[0], "Quotechar": t.fmt[1], "Skiprows": t.fmt[2]},
             "meta_info": {"key_names": {"id_keys": ["name"], "number_keys": ["age"], "text_keys": ["note"]}},
             "path": t.path, "discount_factor": t.d_unit, "task_instruction": [t.instruction, t.query_type],
             "answer": t.answer, "d_unit": t.d_unit, "d_code": t.d_unit ** 0.5, "task_id_original": t.base_id,
             "rho": 0.5, "calib_pred_prior": _released_text(t.fmt)}
    f = tmp_path / "paper.json"
    f.write_text(json.dumps([paper]))
    (loaded,) = load_tasks(f, data_root=root)
    assert loaded.fmt == t.fmt and loaded.rho == 0.5 and loaded.released_prior["delimiter"][t.fmt[0]] == 0.7
    m = evaluate("filereading", "cta-planner", [loaded], prior="released", audit=False, ledger=False)
    assert m.summary["correct"] == 1.0
    raw = {k: v for k, v in paper.items() if k not in ("rho", "d_unit", "d_code", "calib_pred_prior")}
    f.write_text(json.dumps([raw]))
    expanded = load_tasks(f, data_root=root)
    assert [x.rho for x in expanded] == list(RHOS)
    assert_close(expanded[-1].d_code, t.d_unit ** 4, rtol=1e-12)
    f.write_text(json.dumps([{"task_id": "x"}]))
    with pytest.raises(ValueError, match="missing field"):
        load_tasks(f)


def test_report_part_small(monkeypatch, tmp_path):
    from parsimon.cta.filereading import report

    res = report.run_evaluation(1, rows=[("oracle", "oracle", None), ("code-first", "code-first", "estimated"),
                                         ("ttc", "test-then-code", None)], prior_rows=["estimated", "noisy", "adversarial"])
    assert res["n_episodes"] == len(RHOS)
    for run in res["runs"]:
        assert set(run["per_rho"]) == {str(float(r)) for r in RHOS}
    tables, claims = report.tables_from(res)
    assert len(tables) == 2 and len(claims) == 4
    png = report.pareto_plot(res, tmp_path / "p.png")
    assert png.stat().st_size > 1000


class _ScriptedClient:
    """A stand-in chat client: tests everything, then runs the revealed format (reads the prompts)."""

    model = "scripted"

    def __init__(self):
        self.seen = []

    def chat(self, messages, **_):
        from parsimon.llm.types import ChatResponse, Usage

        self.seen.append(messages[1]["content"])
        users = [m["content"] for m in messages if m["role"] == "user"]
        first = users[0]
        fname = first.split("File: ")[1].splitlines()[0]
        task = first.split("Task: ")[1].splitlines()[0]
        qtype = "max" if "maximum" in task else ("mean" if "average" in task else "min")
        if len(users) == 1:
            return ChatResponse(text="garbage", usage=Usage(5, 1))
        if len(users) == 2:
            return ChatResponse(text=f'UNIT_TESTS: test_delimiter("{fname}"), test_quotechar("{fname}"), '
                                     f'test_skiprows("{fname}")', usage=Usage(5, 5))
        if len(users) == 3:
            vals = {}
            for ln in users[2].splitlines():
                k, v = ln.split(" -> ")
                vals[k.split("(")[0][5:]] = eval(v)  # noqa: S307 - test-only, values we printed
            fmt = (vals["delimiter"], vals["quotechar"], vals["skiprows"])
            return ChatResponse(text="CODE\n```python\n" + solution_code(fname, fmt, task, qtype) + "```",
                                usage=Usage(5, 5))
        res = [ln for ln in users[3].splitlines() if ln.startswith("RESULT:")]
        return ChatResponse(text="<think>done</think>ANSWER: " + res[0].split(":", 1)[1].strip(), usage=Usage(5, 5))


def test_llm_agent_roundtrip(small_tasks):
    client = _ScriptedClient()
    m = evaluate("filereading", "llm-cta", small_tasks[:2], prior="true", policy_kwargs={"client": client},
                 audit=False, ledger=False)
    assert m.summary["correct"] == 1.0 and m.policy_stats["parse_failures"] == 2
    assert "Format likelihoods: delimiter:" in client.seen[0]
    client2 = _ScriptedClient()
    evaluate("filereading", "llm-prompted", small_tasks[:1], policy_kwargs={"client": client2}, audit=False, ledger=False)
    assert "No format likelihoods are provided." in client2.seen[0]


def test_cli_eval_filereading(small_tasks, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from parsimon.cli import app

    f = save_tasks(small_tasks[:4], tmp_path / "t.jsonl")
    monkeypatch.setenv("PARSIMON_FILEREADING_DATA_ROOT", small_tasks[0].data_root)
    r = CliRunner().invoke(app, ["cta", "eval", "--env", "filereading", "--policy", "cta-planner", "--prior", "true",
                                 "--tasks", str(f), "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    d = json.loads((tmp_path / "o" / "result.json").read_text())
    assert d["n_tasks"] == 4 and d["match_rate"] == 1.0 and set(d["per_rho"]) == {str(x) for x in RHOS}
    r = CliRunner().invoke(app, ["cta", "eval", "--env", "filereading", "--policy", "nope", "--n", "4",
                                 "--out", str(tmp_path / "o2")])
    assert r.exit_code == 2 and "`policy` must be one of" in r.output
