#!/usr/bin/env bash
# Idempotent set-up of a fresh machine: system packages, a virtual environment in .venv, PyTorch
# (the CPU build pinned to 2.13.0 unless a torch >= 2.11 is already there), and parsimon with all
# its extras. A stamp file makes a second run return in about a second.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${PARSIMON_VENV:-.venv}
PY=${PYTHON:-python3}
STAMP="$VENV/.parsimon-setup"
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  echo "setup: .venv is up to date"
  exit 0
fi

# System packages: a compiler and cmake build llama-cpp-python once per machine (pip caches the wheel).
# bubblewrap gives the sandbox its namespaces; Chromium, Xvfb and xdotool drive the GUI environments
# (Playwright is pointed at Debian's Chromium: nothing is downloaded by `playwright install`).
need_apt=()
command -v cmake >/dev/null 2>&1 || need_apt+=(cmake)
command -v g++ >/dev/null 2>&1 || need_apt+=(g++)
command -v bwrap >/dev/null 2>&1 || need_apt+=(bubblewrap)
if [ "${PARSIMON_NO_BROWSER:-0}" != 1 ]; then
  command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
  command -v Xvfb >/dev/null 2>&1 || need_apt+=(xvfb)
  command -v xdotool >/dev/null 2>&1 || need_apt+=(xdotool)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq "${need_apt[@]}"
  else sudo apt-get update -qq && sudo apt-get install -y -qq "${need_apt[@]}"; fi
fi

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP="$VENV/bin/python -m pip"
# pip, quiet, with this machine's harmless "index location is ignored" warnings filtered out; a
# failing install still fails the set-up.
pipq() {
  local log rc=0
  log=$(mktemp)
  $PIP "$@" >"$log" 2>&1 || rc=$?
  grep -v "is ignored" "$log" >&2 || true
  rm -f "$log"
  return $rc
}
pipq install -q --upgrade pip wheel setuptools

# PyTorch: keep a CUDA/other torch >= 2.11 a GPU user installed; otherwise the CPU wheel 2.13.0.
if ! "$VENV/bin/python" -c "import torch,sys; v=tuple(int(x) for x in torch.__version__.split('+')[0].split('.')[:2]); sys.exit(0 if v>=(2,11) else 1)" 2>/dev/null; then
  pipq install -q "torch==2.13.0"
fi
# Triton: the interpreter runs the kernels on CPU in tests; the version that goes with torch 2.13.
if ! "$VENV/bin/python" -c "import triton" 2>/dev/null; then
  pipq install -q "triton==3.7.1"
fi

# llama-cpp-python compiles from source (about 8 minutes on 2 cores); pip's wheel cache keeps the
# result, so this happens once per machine. A portable build (AVX2, no AMX): a native build on a CPU
# with AMX tiles crashes (segmentation fault) in the first chat completion on virtual machines that do
# not grant the AMX state, and a portable wheel can be cached and reused on other machines.
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2}
export CMAKE_ARGS=${CMAKE_ARGS:-"-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"}
WHEELS=${PARSIMON_WHEEL_CACHE:-$HOME/.cache/parsimon/wheels-portable}
mkdir -p "$WHEELS"
if ! ls "$WHEELS"/llama_cpp_python-*.whl >/dev/null 2>&1; then
  echo "setup: building llama-cpp-python once for this machine (about 8 minutes on 2 cores)"
  pipq wheel -q --no-deps --no-cache-dir -w "$WHEELS" "llama-cpp-python>=0.3.0"
fi
pipq install -q --find-links "$WHEELS" -e ".[all]"
# A llama-cpp-python built elsewhere (e.g. a native build) is replaced by the cached portable wheel.
pipq install -q --no-deps --force-reinstall "$WHEELS"/llama_cpp_python-*.whl
"$VENV/bin/python" -c "import parsimon, torch, llama_cpp, pyspiel" >/dev/null
echo "$want" > "$STAMP"
echo "setup: done ($("$VENV/bin/python" -c 'import torch; print("torch", torch.__version__)'))"
