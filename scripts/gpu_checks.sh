#!/usr/bin/env bash
# The standing GPU checks, as one command on a CUDA machine with PyTorch and Triton (the lent device's image):
#   python benchmarks/attention_bench.py --gpu; pytest -m gpu; python benchmarks/games_bench.py --gpu
# Wheels the image lacks (open_spiel, ml_collections, diffusers, importlib_metadata) are installed from
# .whl/ when that folder exists. Results go to $OUT (default runs/gpu-checks): the two benchmarks' JSON and
# plots, the test log, nvidia-smi's line and a summary log. Each step has its own time limit, so one that
# hangs cannot take the others' time.
set -u
OUT=${OUT:-runs/gpu-checks}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH="$PYTHONPATH:/tmp/site" || exit 1
fi
log="$OUT/gpu_checks.log"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem --format=csv | tee "$OUT/nvidia_smi.txt"
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name())" | tee "$log"
STEPS=${STEPS:-attention pytest games}  # which checks run
step() {  # step NAME SECONDS COMMAND...
  local name=$1 secs=$2; shift 2
  case " $STEPS " in *" ${name%%_*} "*) ;; *) return ;; esac
  local t0=$SECONDS
  timeout "$secs" "$@"; local rc=$?
  echo "== $name: rc=$rc in $((SECONDS - t0)) s (limit $secs s)" | tee -a "$log"
}
step attention_bench "${ATTN_S:-240}" python3 benchmarks/attention_bench.py --gpu --out /tmp/gpu-attn --save
step pytest_gpu "${PYTEST_S:-110}" bash -c "python3 -m pytest -q -m gpu -p no:cacheprovider tests/attention tests/latents/test_train.py 2>&1 | tee '$OUT/pytest_gpu.log'"
step games_bench "${GAMES_S:-170}" python3 benchmarks/games_bench.py --gpu --no-python --out /tmp/gpu-games --save
for f in attention_gpu.json attention_gpu.png games_bench_gpu.json games_bench_gpu.png; do
  [ -f "benchmarks/results/$f" ] && cp "benchmarks/results/$f" "$OUT/"
done
cat "$log"
