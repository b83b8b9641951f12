"""The same search on Keras' JAX backend (the fast GPU backend), run on the CPU here, with
TensorFlow made absent the way a GPU machine without it has it: every import of it fails."""

import json
import subprocess
import sys

import pytest

from automl_tl.testing import require_module

require_module("jax", "pip install 'automl-tl[jax]'")

pytestmark = pytest.mark.slow  # a real fit and predict, each in its own process


def test_fit_and_predict_on_jax_without_tensorflow(tmp_path, jax_without_tensorflow, image_folder, real_images):
    env = jax_without_tensorflow
    probe = subprocess.run([sys.executable, "-c", "import tensorflow"], env=env, capture_output=True, text=True)
    assert probe.returncode == 1 and "No module named 'tensorflow'" in probe.stderr
    run = tmp_path / "run"
    # a fine-tuning trial trains on the input pipeline (tf.data before: failed without TensorFlow)
    cmd = [sys.executable, "-m", "automl_tl.cli", "fit", str(image_folder), "--trials", "2", "--run-dir",
           str(run), "--backbones", "mobilenetv2", "--strategies", "fine_tune_top", "--quiet", "--no-report"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    import csv

    rows = list(csv.DictReader((run / "leaderboard.csv").open()))  # the study's view
    assert {r["state"] for r in rows} <= {"COMPLETE", "WAITING"}, rows  # none failed
    assert any(r["state"] == "COMPLETE" and r["strategy"] == "fine_tune_top" for r in rows)
    # images the run never saw (the same three classes, the next ten of each): the model learnt
    from automl_tl.demo import write_image_folder

    images, labels, names = real_images
    held = write_image_folder(tmp_path / "held-out", images, labels, names, per_class=10, classes=(0, 1, 7), offset=12)
    files = sorted(held.glob("*/*.png"))
    out = subprocess.run([sys.executable, "-m", "automl_tl.cli", "predict", str(run), *map(str, files), "--json"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    got = [json.loads(line)["label"] for line in out.stdout.strip().splitlines()]
    assert len(got) == len(files) == 30
    accuracy = sum(g == f.parent.name for g, f in zip(got, files)) / len(files)
    assert accuracy >= 0.6, accuracy  # chance is 0.33; T-shirt, trouser and sneaker are far apart
