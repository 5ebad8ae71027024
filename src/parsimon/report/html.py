"""Render report sections as one self-contained HTML page (figures are PNG files beside it)."""

from __future__ import annotations

import html
import json
import os
from dataclasses import asdict
from pathlib import Path

from parsimon.report.section import Section, Table

__all__ = ["write_report", "fmt"]

_CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.8em 0;font-size:.9em}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}th{background:#f3f3f3}
td:first-child,th:first-child,td.txt{text-align:left}
.ok{color:#0a7d28;font-weight:600}.no{color:#b3261e;font-weight:600}.na{color:#666}
.err{background:#fdecea;padding:.6em;white-space:pre-wrap;font-family:monospace;font-size:.8em}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.85em;color:#555}details{margin:.5em 0}pre{font-size:.8em;background:#f8f8f8;padding:.5em}
.note{font-size:.85em;color:#555}
"""


def fmt(x) -> str:
    """Format one table cell: floats to 4 significant digits, everything else with ``str``."""
    if isinstance(x, bool) or x is None:
        return "–" if x is None else str(x)
    if isinstance(x, float):
        if x != x:
            return "nan"
        if x == 0:
            return "0"
        if abs(x) >= 1e5 or abs(x) < 1e-3:
            return f"{x:.3e}"
        return f"{x:.4g}"
    return str(x)


def _cls(x) -> str:
    """Numbers align right (the default); text cells longer than a short label align left."""
    if isinstance(x, (int, float)) or x is None:
        return ""
    return " class='txt'" if len(str(x)) > 12 else ""


def _table(t: Table) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in t.columns)
    body = "".join(
        "<tr>" + "".join(f"<td{_cls(c)}>{html.escape(fmt(c))}</td>" for c in row) + "</tr>" for row in t.rows
    )
    note = f"<p class='note'>{html.escape(t.note)}</p>" if t.note else ""
    return f"<h3>{html.escape(t.title)}</h3><table><tr>{head}</tr>{body}</table>{note}"


def _section(s: Section, out: Path) -> str:
    parts = [f"<h2 id='{html.escape(s.name)}'>{html.escape(s.paper)} <small>(parsimon.{s.name})</small></h2>"]
    if s.summary:
        parts.append(f"<p>{html.escape(s.summary)}</p>")
    if s.run_dir:
        folder = html.escape(s.run_dir.rstrip("/") + "/")
        parts.append(f"<p class='note'>Run folder: <a href='{folder}'>{folder}</a> (run {html.escape(s.run_id or '–')}: "
                     f"<a href='{folder}config.json'>config.json</a>, <a href='{folder}metrics.json'>metrics.json</a>, "
                     f"<a href='{folder}events.jsonl'>events.jsonl</a>)</p>")
    if s.error:
        parts.append(f"<p class='no'>This section failed:</p><div class='err'>{html.escape(s.error)}</div>")
    if s.claims:
        rows = []
        for c in s.claims:
            cls, word = {True: ("ok", "yes"), False: ("no", "no"), None: ("na", "not comparable")}[c.reproduced]
            rows.append(
                f"<tr><td>{html.escape(c.text)}</td><td>{html.escape(c.paper)}</td><td>{html.escape(c.ours)}</td>"
                f"<td class='{cls}'>{word}</td><td class='note txt'>{html.escape(c.note)}</td></tr>"
            )
        parts.append(
            "<h3>Claims</h3><table><tr><th>claim</th><th>paper</th><th>ours</th><th>reproduced</th>"
            "<th>how measured</th></tr>" + "".join(rows) + "</table>"
        )
    parts.extend(_table(t) for t in s.tables)
    for f in s.figures:
        rel = os.path.relpath(Path(f.path).resolve(), out.resolve())
        parts.append(
            f"<figure><img src='{html.escape(rel)}' alt='{html.escape(f.caption)}'>"
            f"<figcaption>{html.escape(f.caption)}</figcaption></figure>"
        )
    if s.not_reproduced:
        items = "".join(f"<li>{html.escape(x)}</li>" for x in s.not_reproduced)
        parts.append(f"<h3>Not reproduced</h3><ul>{items}</ul>")
    if s.config:
        parts.append(
            "<details><summary>Configuration used</summary><pre>"
            + html.escape(json.dumps(s.config, indent=2, default=str))
            + "</pre></details>"
        )
    parts.append(f"<p class='note'>Ran in {s.seconds:.1f} s.</p>")
    return "\n".join(parts)


def write_report(sections: list[Section], out: Path, meta: dict) -> Path:
    """Write ``out/index.html`` and ``out/sections.json``; return the HTML path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    toc = "".join(
        f"<li><a href='#{html.escape(s.name)}'>{html.escape(s.paper)}</a>{' — failed' if s.error else ''}</li>"
        for s in sections
    )
    skipped = meta.get("skipped") or []
    skipped_html = (
        f"<p class='note'>Not yet in this report (no reproduce module): {html.escape(', '.join(skipped))}.</p>"
        if skipped
        else ""
    )
    body = "\n".join(_section(s, out) for s in sections)
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Parsimon reproduction report</title>"
        f"<style>{_CSS}</style></head><body><h1>Parsimon reproduction report</h1>"
        f"<p class='note'>{html.escape(meta.get('mode', ''))} run, created {html.escape(str(meta.get('created_utc', '')))} UTC, "
        f"python {html.escape(str(meta.get('python', '')))}, torch {html.escape(str(meta.get('torch', '–')))}, "
        f"GPU: {html.escape(str(meta.get('cuda', 'none')))}, seed {meta.get('seed', 0)}.</p>"
        f"<ul>{toc}</ul>{skipped_html}{body}</body></html>"
    )
    path = out / "index.html"
    path.write_text(page, encoding="utf-8")
    (out / "sections.json").write_text(
        json.dumps([asdict(s) for s in sections], indent=2, default=str), encoding="utf-8"
    )
    return path
