"""JAX's persistent compilation cache: a program compiled in one process is read back by the
next (automl_tl.compilation), and it is off the JAX backend or when turned off."""

import os
import subprocess
import sys

from automl_tl.testing import require_module

require_module("jax", "pip install 'automl-tl[jax]'")

PROGRAM = """
import sys, time
import keras
from automl_tl.compilation import enable_persistent_compilation_cache
folder = enable_persistent_compilation_cache(sys.argv[1] if len(sys.argv) > 1 else None)
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(3)])
import numpy as np
model.predict_on_batch(np.ones((4, 8), "float32"))
print("FOLDER", folder)
"""


def _run(tmp_path, *args, **env):
    full = dict(os.environ, **{"KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu",
                               "AUTOML_TL_CACHE_DIR": str(tmp_path / "emb"), **env})
    out = subprocess.run([sys.executable, "-c", PROGRAM, *args], env=full, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.split("FOLDER ")[-1].strip()


def test_programs_written_then_read_back(tmp_path):
    folder = tmp_path / "jax"
    assert _run(tmp_path, str(folder)) == str(folder)
    written = {p.name for p in folder.iterdir()}
    assert written  # the initial-weight programs and the forward pass
    _run(tmp_path, str(folder))
    assert {p.name for p in folder.iterdir()} == written  # the same programs: read back, none new


def test_default_folder_in_the_embedding_cache_and_the_off_switch(tmp_path):
    assert _run(tmp_path) == str(tmp_path / "emb" / "jax")  # AUTOML_TL_CACHE_DIR=<tmp>/emb
    assert _run(tmp_path, AUTOML_TL_JAX_CACHE="0") == "None"
