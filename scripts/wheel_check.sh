#!/usr/bin/env bash
# CI: parsimon works as an installed wheel, outside the source checkout.
#
# 1. builds the wheel from a copy of the checkout (so the build leaves no build/ or *.egg-info behind);
# 2. installs it, without its dependencies, into a fresh venv in a temporary folder; the dependencies are
#    the ones already installed for $PYTHON, made visible through a path file (offline, seconds);
# 3. checks that `import parsimon` comes from that venv, then, from an empty temporary folder, runs
#    `parsimon reproduce --only governance`, `parsimon runs list`, `parsimon games solve kuhn_poker
#    --iterations 10` and `parsimon cta generate` + `parsimon cta eval --tasks`.
# A library module that reads the source checkout, or a file not shipped as package data, fails here.
#
# Usage: scripts/wheel_check.sh            (PYTHON=/path/to/python to choose the interpreter; default
#                                          .venv/bin/python, else python3; KEEP=1 keeps the temporary folder)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then PY="$ROOT/.venv/bin/python"; else PY=python3; fi
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/parsimon-wheel-check.XXXXXX")
if [ "${KEEP:-0}" = 1 ]; then echo "wheel check: keeping $WORK"; else trap 'rm -rf "$WORK"' EXIT; fi
unset PYTHONPATH  # the checkout's src must not be importable from the installed wheel's runs
say() { echo "wheel check: $*"; }

# 1. the wheel, built from a copy of the tracked (and untracked, not ignored) files
mkdir -p "$WORK/src" "$WORK/dist"
if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  (cd "$ROOT" && git ls-files -co --exclude-standard -z | xargs -0 tar -cf - 2>/dev/null) | tar -C "$WORK/src" -xf -
else
  tar -C "$ROOT" --exclude=.venv --exclude=.git --exclude=build --exclude='*.egg-info' --exclude=reports \
      --exclude=runs -cf - . | tar -C "$WORK/src" -xf -
fi
if "$PY" -c "import setuptools, wheel" 2>/dev/null; then
  isolation=--no-build-isolation  # offline: the build backend comes from $PY's environment
else
  isolation=
fi
"$PY" -m pip wheel -q --no-deps $isolation -w "$WORK/dist" "$WORK/src"
WHEEL=$(ls "$WORK"/dist/parsimon-*.whl)
say "built $(basename "$WHEEL")"
"$PY" - "$WHEEL" <<'EOF'
import sys, zipfile

names = zipfile.ZipFile(sys.argv[1]).namelist()
bad = [n for n in names if n.startswith(("tests/", "benchmarks/", "scripts/"))]
assert not bad, f"the wheel ships files outside the package: {bad[:5]}"
assert "parsimon/cli.py" in names and "parsimon/games/evolve/seeds/cfr_plus.py" in names, "package files missing"
EOF

# 2. a fresh venv outside the checkout, the wheel installed without dependencies
"$PY" -m venv --without-pip "$WORK/venv"
VPY="$WORK/venv/bin/python"
SITE=$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
"$PY" -c 'import site; print("\n".join(site.getsitepackages()))' > "$SITE/_parsimon_dependencies.pth"
"$PY" -m pip --python "$VPY" install -q --no-deps --no-index "$WHEEL"

# 3. from an empty folder, with a private state folder
mkdir -p "$WORK/run"
cd "$WORK/run"
export PARSIMON_HOME="$WORK/home" OMP_NUM_THREADS=1 MPLBACKEND=Agg PARSIMON_PROGRESS_INTERVAL=30
"$VPY" - "$WORK/venv" "$ROOT" <<'EOF'
import os, sys

import parsimon

where = os.path.realpath(parsimon.__file__)
assert where.startswith(os.path.realpath(sys.argv[1])), f"parsimon imported from {where}, not the wheel's venv"
assert not where.startswith(os.path.realpath(sys.argv[2])), f"parsimon imported from the checkout: {where}"
print(f"wheel check: parsimon {parsimon.__version__} from {where}")
EOF
PARSIMON="$WORK/venv/bin/parsimon"
say "parsimon reproduce --only governance"
"$PARSIMON" reproduce --only governance --out report
test -f report/index.html
"$PARSIMON" runs list report --json > runs.json
"$VPY" - <<'EOF'
import json

rows = json.load(open("runs.json"))
assert [r["name"] for r in rows] == ["reproduce governance"] and rows[0]["status"] == "ok", rows
print(f"wheel check: runs list: {rows[0]['name']} {rows[0]['status']} ({rows[0]['wall_s']:.1f} s)")
EOF
say "parsimon games solve kuhn_poker --iterations 10"
"$PARSIMON" games solve kuhn_poker --iterations 10
say "parsimon cta generate + cta eval --tasks"
"$PARSIMON" cta generate --env pandora --n 20 --seed 42 --out pandora_tasks.jsonl
"$PARSIMON" cta eval --env pandora --policy cta-planner --tasks pandora_tasks.jsonl --out runs/p
test -f runs/p/metrics.json
say "ok"
