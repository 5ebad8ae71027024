"""The FILEREADING task generator (spec A3.3).

A dataset holds ``n`` (default 2,000) base tasks split 1,400 / 300 / 300 into train / val / test. Each
base task has:

* a filename: a Faker word plus the tokens of its binary features (``eu``, ``tsv``, ``sas``, ``cn`` or
  ``zh``) in random order, extension ``.tsv`` iff ``has_tsv`` — the 16 feature combinations are balanced
  (125 tasks each at n = 2,000);
* a true format ``(delimiter, quotechar, skiprows)`` drawn from the log-linear prior of its features
  (:func:`parsimon.cta.filereading.prior.true_prior`);
* a unit discount ``d_unit ~ U(0.35, 0.95)`` rounded to two decimals (the released code's range; the
  paper says U[0.5, 1], configurable with ``d_range``); every base task is used once per
  ``ρ ∈ {0.5, 1, 2, 4}`` with ``d_code = d_unit^ρ``;
* a CSV (written on demand, :meth:`Dataset.tasks`): 20–50 rows of id / numeric / text columns; every text
  field embeds the delimiter and the quote character (escaped by doubling) and each numeric column has at
  least one ``None``; ``skiprows = 1`` prepends a junk line. Content is re-drawn until **every one of the
  11 wrong formats makes the reference query code fail** (parse error, missing column or non-numeric
  column), so only the fully correct triple yields the answer;
* a query: the id of the record with the maximum of a numeric column (exact match), or the mean or the
  minimum of a numeric column excluding None (|error| < 0.01).

Everything is a deterministic function of ``(seed, n)`` (the feature balance and the split are permutations of
all ``n`` tasks; each task's own draws are seeded by ``(seed, index)``).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from parsimon.cta.filereading.prior import ATTRS, CONFIGS, FEATURES, OPTIONS, true_prior

__all__ = [
    "DEFAULT_D_RANGE",
    "RHOS",
    "BaseTask",
    "Dataset",
    "FileTask",
    "generate_tasks",
    "get_dataset",
    "run_query",
    "save_tasks",
    "solution_code",
]

RHOS = (0.5, 1.0, 2.0, 4.0)
DEFAULT_D_RANGE = (0.35, 0.95)
_SPLITS = ("train", "val", "test")
_ID_KEYS = ("username", "name", "email", "record_id")
_NUM_KEYS = {"age": (18, 80, 1), "salary": (20000, 150000, 2), "rating": (1, 5, 2), "score": (0, 100, 2),
             "total_count": (0, 10000, 0), "price": (1, 500, 2), "weight": (0.5, 120, 2)}
_TEXT_KEYS = ("summary", "description", "note", "remark", "comment")
_QUERY_TYPES = ("max", "mean", "min")

_FAKER: Any = None
_FAKER_LOCK = threading.Lock()


def _faker(seed: int) -> Any:
    global _FAKER
    if _FAKER is None:
        from faker import Faker

        _FAKER = Faker("en_US")
    _FAKER.seed_instance(seed)
    return _FAKER


@dataclass
class BaseTask:
    """Format-level metadata of one task (no CSV content): what the prior estimator trains on."""

    base_id: str
    index: int
    filename: str
    features: dict[str, bool]
    fmt: tuple  # (delimiter, quotechar, skiprows)
    d_unit: float
    split: str
    seed: int


@dataclass
class FileTask:
    """One FILEREADING episode (a base task at one ρ). ``fmt`` and ``answer`` are hidden from agents."""

    task_id: str
    base_id: str
    filename: str
    features: dict[str, bool]
    fmt: tuple
    path: str  # relative to data_root: task_csv_<base_id>/<filename>
    data_root: str
    instruction: str
    query_type: str
    answer: Any
    d_unit: float
    d_code: float
    rho: float
    split: str = "test"
    columns: dict[str, list[str]] = field(default_factory=dict)
    released_prior: dict | None = None  # the paper's calib_pred_prior, where loaded from its file
    dataset_seed: int | None = None

    @property
    def csv_path(self) -> Path:
        return Path(self.data_root) / self.path

    @property
    def true_prior(self) -> dict[str, dict]:
        return true_prior(self.features)

    def public(self) -> dict[str, Any]:
        """What an agent may see: filename, query, costs (no format, no answer)."""
        return {"task_id": self.task_id, "filename": self.filename, "features": dict(self.features),
                "instruction": self.instruction, "query_type": self.query_type, "d_unit": self.d_unit,
                "d_code": self.d_code, "rho": self.rho}

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["fmt"] = list(self.fmt)
        d.pop("data_root")
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], data_root: str | Path) -> FileTask:
        d = dict(d)
        d["fmt"] = tuple(d["fmt"])
        d["data_root"] = str(data_root)
        if d.get("released_prior"):
            d["released_prior"] = {a: {(int(k) if a == "skiprows" else k): v for k, v in d["released_prior"][a].items()}
                                   for a in ATTRS}
        return cls(**d)


# ---------------------------------------------------------------------------------------------------
# Reference query code


def _columns_of(instruction: str) -> list[str]:
    return re.findall(r"`([^`]+)`", instruction)


def solution_code(filename: str, fmt: tuple, instruction: str, query_type: str) -> str:
    """pandas code that answers the query when ``fmt`` is the file's format; it prints ``RESULT: <value>``
    and fails (raises) for a wrong format on generated files."""
    d, q, s = fmt
    cols = _columns_of(instruction)
    head = (f"import pandas as pd\n"
            f"df = pd.read_csv({filename!r}, sep={d!r}, quotechar={q!r}, skiprows={int(s)}, header=0)\n")
    if query_type == "max":
        if len(cols) < 2:
            raise ValueError(f"a max query names an id and a numeric column in backticks: {instruction!r}")
        idc, num = cols[0], cols[1]
        body = f"col = df[{num!r}].astype(float)\nprint('RESULT:', df.loc[col.idxmax(), {idc!r}])\n"
    elif query_type in ("mean", "min"):
        if not cols:
            raise ValueError(f"the query names its column in backticks: {instruction!r}")
        body = f"col = df[{cols[0]!r}].astype(float)\nprint('RESULT:', col.{query_type}())\n"
    else:
        raise ValueError(f"`query_type` must be one of {_QUERY_TYPES}, got {query_type!r}")
    return head + body


def run_query(source: str | Path | io.StringIO, fmt: tuple, query_type: str, columns: list[str]) -> Any:
    """In-process equivalent of :func:`solution_code` (used to check generated files); raises on failure."""
    import pandas as pd

    d, q, s = fmt
    df = pd.read_csv(source, sep=d, quotechar=q, skiprows=int(s), header=0)
    if query_type == "max":
        col = df[columns[1]].astype(float)
        return df.loc[col.idxmax(), columns[0]]
    col = df[columns[0]].astype(float)
    return getattr(col, query_type)()


# ---------------------------------------------------------------------------------------------------
# Generation


def _balanced_features(n: int, rng: np.random.Generator) -> list[dict[str, bool]]:
    combos = [tuple(bool((c >> k) & 1) for k in range(len(FEATURES))) for c in range(16)]
    reps = np.tile(np.arange(16), math.ceil(n / 16))[:n]
    reps = rng.permutation(reps)
    return [dict(zip(FEATURES, combos[c], strict=True)) for c in reps]


def _sample_format(features: dict[str, bool], rng: np.random.Generator) -> tuple:
    p = true_prior(features)
    out = []
    for a in ATTRS:
        opts = OPTIONS[a]
        out.append(opts[int(rng.choice(len(opts), p=[p[a][o] for o in opts]))])
    return tuple(out)


def _filename(word: str, features: dict[str, bool], rng: np.random.Generator) -> str:
    toks = []
    if features["has_eu"]:
        toks.append("eu")
    if features["has_tsv"]:
        toks.append("tsv")
    if features["has_sas"]:
        toks.append("sas")
    if features["has_cn"]:
        toks.append("cn" if rng.random() < 0.5 else "zh")
    toks = [toks[i] for i in rng.permutation(len(toks))]
    word = re.sub(r"[^A-Za-z]", "", word) or "data"
    return "_".join([word, *toks]) + (".tsv" if features["has_tsv"] else ".csv")


def _split_sizes(n: int, splits: tuple[int, int, int] | None) -> tuple[int, int, int]:
    if splits is None:
        splits = (1400, 300, 300) if n == 2000 else (round(0.7 * n), round(0.15 * n), n - round(0.7 * n) - round(0.15 * n))
    if len(splits) != 3 or sum(splits) != n or min(splits) < 0:
        raise ValueError(f"`splits` must be three non-negative sizes summing to n={n}, got {splits}")
    return tuple(int(s) for s in splits)  # type: ignore[return-value]


def make_base_tasks(n: int = 2000, seed: int = 0, *, splits: tuple[int, int, int] | None = None,
                    d_range: tuple[float, float] = DEFAULT_D_RANGE) -> list[BaseTask]:
    """The dataset's base tasks (filenames, features, formats, d_unit, split); cheap, no files."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"`n` must be a positive int, got {n!r}")
    lo, hi = d_range
    if not 0 < lo <= hi <= 1:
        raise ValueError(f"`d_range` must satisfy 0 < low <= high <= 1, got {d_range}")
    sizes = _split_sizes(n, splits)
    rng = np.random.default_rng([seed, 0xF11E])
    feats = _balanced_features(n, rng)
    order = rng.permutation(n)
    split_of = np.empty(n, dtype=object)
    split_of[order[:sizes[0]]] = "train"
    split_of[order[sizes[0]:sizes[0] + sizes[1]]] = "val"
    split_of[order[sizes[0] + sizes[1]:]] = "test"
    out, seen = [], set()
    with _FAKER_LOCK:
        for i in range(n):
            r = np.random.default_rng([seed, i, 1])
            fk = _faker(int(seed) * 1_000_003 + i)
            base_id = f"{int(r.integers(0, 16 ** 6)):06x}"
            while base_id in seen:
                base_id = f"{int(r.integers(0, 16 ** 6)):06x}"
            seen.add(base_id)
            fname = _filename(fk.word(), feats[i], r)
            fmt = _sample_format(feats[i], r)
            d_unit = round(float(r.uniform(lo, hi)), 2)
            out.append(BaseTask(base_id, i, fname, feats[i], fmt, d_unit, str(split_of[i]), seed))
    return out


def _number(key: str, r: np.random.Generator) -> float | int:
    lo, hi, nd = _NUM_KEYS[key]
    v = r.uniform(lo, hi)
    return int(round(v)) if nd == 0 else round(float(v), nd)


def _text(fk: Any, d: str, q: str, k: int) -> str:
    # k delimiters inside the field (rows differ in k, so a wrong quotechar gives ragged rows) and a
    # quoted word (escaped by doubling when written).
    w = [re.sub(r"[^A-Za-z]", "", x) or "x" for x in fk.words(5)]
    seps = [d if j < k else "" for j in range(3)]
    return f"{w[0]}{seps[0]} {w[1]} {q}{w[2]}{q}{seps[1]} {w[3]}{seps[2]} {w[4]}"


def _id_value(key: str, fk: Any, r: np.random.Generator) -> str:
    if key == "username":
        return f"{fk.user_name()}_{int(r.integers(1000, 10000))}"
    if key == "name":
        return fk.name()
    if key == "email":
        return fk.email()
    return f"R{int(r.integers(0, 10 ** 6)):06d}"


def _content(base: BaseTask, attempt: int) -> tuple[str, dict]:
    d, q, s = base.fmt
    r = np.random.default_rng([base.seed, base.index, 2, attempt])
    fk = _faker(int(base.seed) * 1_000_003 + base.index + 7_919 * (attempt + 1))
    n_rows = int(r.integers(20, 51))
    id_keys = [str(k) for k in r.choice(_ID_KEYS, size=int(r.integers(1, 3)), replace=False)]
    num_keys = [str(k) for k in r.choice(list(_NUM_KEYS), size=2, replace=False)]
    text_keys = [str(k) for k in r.choice(_TEXT_KEYS, size=int(r.integers(1, 3)), replace=False)]
    cols = id_keys + num_keys + text_keys
    cols = [cols[i] for i in r.permutation(len(cols))]
    data: dict[str, list] = {}
    for k in id_keys:
        vals, seen = [], set()
        for _ in range(n_rows):
            v = _id_value(k, fk, r)
            while v in seen:
                v = f"{v}_{int(r.integers(10, 100))}"
            seen.add(v)
            vals.append(v)
        data[k] = vals
    for k in num_keys:
        vals = [_number(k, r) for _ in range(n_rows)]
        n_none = int(r.integers(1, max(2, n_rows // 8) + 1))
        for j in r.choice(n_rows, size=n_none, replace=False):
            vals[int(j)] = None
        data[k] = vals
    for k in text_keys:
        ks = r.integers(0, 4, size=n_rows)
        ks[:2] = [1, 2]
        ks = r.permutation(ks)
        data[k] = [_text(fk, d, q, int(kk)) for kk in ks]
    qtype = str(r.choice(_QUERY_TYPES))
    num = num_keys[int(r.integers(0, 2))]
    nums = [v for v in data[num] if v is not None]
    if qtype == "max":
        idc = id_keys[int(r.integers(0, len(id_keys)))]
        m = max(nums)
        if sum(v == m for v in nums) != 1:
            raise _Retry
        answer: Any = data[idc][data[num].index(m)]
        instruction = f"Find the `{idc}` of the record with the maximum `{num}`."
        qcols = [idc, num]
    elif qtype == "mean":
        answer = float(np.mean(nums))
        instruction = f"Find the average of `{num}` (excluding None)."
        qcols = [num]
    else:
        answer = float(min(nums))
        instruction = f"Find the minimum of `{num}` (excluding None)."
        qcols = [num]
    buf = io.StringIO()
    if int(s) == 1:
        junk = f"# data export {fk.date()} batch {int(r.integers(100, 1000))} by {fk.first_name()}"
        buf.write(re.sub(r"[,;\t'\"]", "", junk) + "\n")
    w = csv.writer(buf, delimiter=d, quotechar=q, quoting=csv.QUOTE_MINIMAL, doublequote=True, lineterminator="\n")
    w.writerow(cols)
    for i in range(n_rows):
        w.writerow(["None" if data[c][i] is None else data[c][i] for c in cols])
    meta = {"instruction": instruction, "query_type": qtype, "answer": answer, "query_columns": qcols,
            "columns": {"id_keys": id_keys, "number_keys": num_keys, "text_keys": text_keys}, "n_rows": n_rows}
    return buf.getvalue(), meta


class _Retry(Exception):
    pass


def _check(text: str, fmt: tuple, meta: dict) -> bool:
    """True iff the correct format gives the answer and every wrong format fails."""
    try:
        got = run_query(io.StringIO(text), fmt, meta["query_type"], meta["query_columns"])
    except Exception:  # noqa: BLE001
        return False
    ok = (str(got) == str(meta["answer"])) if meta["query_type"] == "max" else abs(float(got) - meta["answer"]) < 1e-6
    if not ok:
        return False
    for cfg in CONFIGS:
        if cfg == tuple(fmt):
            continue
        try:
            run_query(io.StringIO(text), cfg, meta["query_type"], meta["query_columns"])
        except Exception:  # noqa: BLE001 - a failure is what we want
            continue
        return False
    return True


def make_csv(base: BaseTask, *, max_attempts: int = 50) -> tuple[str, dict]:
    """The CSV text and query metadata of a base task (re-drawn until only the true format works)."""
    with _FAKER_LOCK:
        for attempt in range(max_attempts):
            try:
                text, meta = _content(base, attempt)
            except _Retry:
                continue
            if _check(text, base.fmt, meta):
                meta["attempt"] = attempt
                return text, meta
    raise RuntimeError(f"could not generate a CSV for task {base.base_id} whose wrong formats all fail")


def _default_root(seed: int) -> Path:
    from parsimon.paths import home

    return home() / "cta" / "filereading" / f"seed{seed}"


class Dataset:
    """A generated FILEREADING dataset: base tasks, splits, CSVs written on demand under ``data_root``.

    ``Dataset(seed=0)`` has the paper's 2,000 tasks (1,400 / 300 / 300). ``tasks("test")`` writes the
    test CSVs (cached: existing files with the expected content are kept) and returns one
    :class:`FileTask` per base task and ρ (1,200 for the test split).
    """

    def __init__(self, seed: int = 0, n: int = 2000, *, data_root: str | Path | None = None,
                 d_range: tuple[float, float] = DEFAULT_D_RANGE, rhos: tuple[float, ...] = RHOS,
                 splits: tuple[int, int, int] | None = None):
        if not rhos or any((not isinstance(r, (int, float))) or r <= 0 for r in rhos):
            raise ValueError(f"`rhos` must be positive numbers, got {rhos}")
        self.seed, self.n, self.d_range, self.rhos = seed, n, tuple(d_range), tuple(float(r) for r in rhos)
        self.data_root = Path(data_root) if data_root is not None else _default_root(seed)
        self.base = make_base_tasks(n, seed, splits=splits, d_range=d_range)
        self._estimator = None
        self._meta: dict[str, dict] = {}

    def split(self, name: str) -> list[BaseTask]:
        if name not in _SPLITS:
            raise ValueError(f"`split` must be one of {_SPLITS}, got {name!r}")
        return [b for b in self.base if b.split == name]

    def materialise(self, base: BaseTask) -> dict:
        """Write the CSV of ``base`` (if missing) and return its query metadata."""
        if base.base_id in self._meta:
            return self._meta[base.base_id]
        text, meta = make_csv(base)
        path = self.data_root / f"task_csv_{base.base_id}" / base.filename
        if not path.is_file() or path.read_text() != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.write_text(text)
            tmp.replace(path)
        self._meta[base.base_id] = meta
        return meta

    def tasks(self, split: str = "test", *, n_base: int | None = None, rhos: tuple[float, ...] | None = None,
              progress: Any = None) -> list[FileTask]:
        """Episodes of ``split`` (first ``n_base`` base tasks), one per ρ, CSVs written."""
        bases = self.split(split)
        if n_base is not None:
            if n_base < 1:
                raise ValueError(f"`n_base` must be >= 1, got {n_base}")
            bases = bases[:n_base]
        rhos = self.rhos if rhos is None else tuple(float(r) for r in rhos)
        out = []
        for b in bases:
            meta = self.materialise(b)
            for rho in rhos:
                out.append(FileTask(
                    task_id=f"{b.base_id}_{rho}", base_id=b.base_id, filename=b.filename, features=dict(b.features),
                    fmt=tuple(b.fmt), path=f"task_csv_{b.base_id}/{b.filename}", data_root=str(self.data_root),
                    instruction=meta["instruction"], query_type=meta["query_type"], answer=meta["answer"],
                    d_unit=b.d_unit, d_code=float(b.d_unit ** rho), rho=rho, split=b.split,
                    columns=meta["columns"], dataset_seed=self.seed))
            if progress is not None:
                progress()
        return out

    def estimator(self) -> Any:
        """The prior estimator trained on this dataset's training split (memoised)."""
        if self._estimator is None:
            from parsimon.cta.filereading.prior import PriorEstimator

            train = self.split("train") or self.base
            self._estimator = PriorEstimator(seed=self.seed).fit([b.filename for b in train], [b.fmt for b in train])
        return self._estimator


_DATASETS: dict[tuple, Dataset] = {}


def get_dataset(seed: int = 0, n: int = 2000, **kw: Any) -> Dataset:
    """A memoised :class:`Dataset` (same arguments → same object)."""
    if kw.get("data_root") is None:
        kw["data_root"] = _default_root(seed)  # part of the key: PARSIMON_HOME may change
    key = (seed, n, tuple(sorted((k, str(v)) for k, v in kw.items())))
    if key not in _DATASETS:
        _DATASETS[key] = Dataset(seed, n, **kw)
    return _DATASETS[key]


def generate_tasks(n: int, seed: int = 0, *, split: str = "test", data_root: str | Path | None = None) -> list[FileTask]:
    """``n`` episodes from the test split (ρ-major within each base task) of the 2,000-task dataset ``seed``."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"`n` must be a positive int, got {n!r}")
    ds = get_dataset(seed, data_root=data_root)
    return ds.tasks(split, n_base=math.ceil(n / len(ds.rhos)))[:n]


def save_tasks(tasks: list[FileTask], path: str | Path) -> Path:
    """Write tasks as JSON Lines (our format; ``path`` fields are relative to the data root)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        for t in tasks:
            fh.write(json.dumps(t.to_dict()) + "\n")
    return path
