#!/usr/bin/env bash
# The GPU path measured in one run (issue 33), under 6 minutes. From the repository root:
#   on the GPU machine (after benchmarks/gpu/prepare.sh here; carry .gpu):  bash benchmarks/gpu/run.sh
#   here, the CPU side of the same script, smaller:                        bash benchmarks/gpu/run.sh --cpu
# Extra arguments go to bench_gpu.py (its --help lists them). Results: $OUT/gpu.json (the device
# tool's output folder) or benchmarks/_out/gpu.json.
set -euo pipefail
cd "$(dirname "$0")/../.."
outdir=${OUT:-benchmarks/_out}
mkdir -p "$outdir"
if [ "${1:-}" = "--cpu" ]; then
  shift
  py=.venv/bin/python
  limit=1200  # a CPU is ~100x slower: smaller sizes, 96 px
  set -- --images 1000 --image-size 96 --source-size 128 --texts 500 --tune-items 256 "$@"
else
  py=python3
  limit=330  # the whole call stays under 6 minutes with the start-up
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/whl/*.whl
  export PYTHONPATH=/tmp/site
  python3 benchmarks/gpu/minilm_folder.py fill .gpu/minilm /tmp/minilm
  set -- --minilm /tmp/minilm "$@"
fi
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
timeout "$limit" "$py" benchmarks/gpu/bench_gpu.py --out "$outdir/gpu.json" "$@"
