"""The same search on Keras' JAX backend (the fast GPU backend), run on the CPU here."""

import json
import os
import subprocess
import sys


from automl_tl.testing import require_module

require_module("jax", "pip install 'automl-tl[jax]'")


def test_fit_and_predict_on_jax(tmp_path, image_folder):
    env = dict(os.environ, KERAS_BACKEND="jax", AUTOML_TL_CACHE_DIR=str(tmp_path / "cache"),
               JAX_PLATFORMS="cpu")
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "automl_tl.cli", "fit", str(image_folder), "--trials", "2", "--run-dir",
           str(run), "--backbones", "mobilenetv2", "--strategies", "fine_tune_top", "--quiet", "--no-report"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    import csv

    rows = list(csv.DictReader((run / "leaderboard.csv").open()))  # the study's view
    assert any(r["state"] == "COMPLETE" and r["strategy"] == "fine_tune_top" for r in rows)
    img = sorted(image_folder.glob("*/*.png"))[0]
    out = subprocess.run([sys.executable, "-m", "automl_tl.cli", "predict", str(run), str(img), "--json"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1])["label"]
