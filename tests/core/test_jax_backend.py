"""The same search on Keras' JAX backend (the fast GPU backend), run on the CPU here, with
TensorFlow made absent the way a GPU machine without it has it: every import of it fails."""

import json
import subprocess
import sys

import pytest

from automl_tl.testing import require_module

require_module("jax", "pip install 'automl-tl[jax]'")

pytestmark = pytest.mark.slow  # a real fit and predict in a process of their own


#: the CLI's fit, then its predict, in one process on JAX: what is proved is that neither needs
#: TensorFlow (predict reads the saved model from the run folder, as a new process would); a second
#: process would only start JAX again
FIT_THEN_PREDICT = """
import json
import sys
from automl_tl.cli import main

fit, predict = json.loads(sys.argv[1]), json.loads(sys.argv[2])
rc = main(fit)
print("FIT", rc, flush=True)
if rc == 0:
    print("PREDICT", main(predict), flush=True)
assert "tensorflow" not in sys.modules
"""


def test_fit_and_predict_on_jax_without_tensorflow(tmp_path, jax_without_tensorflow, image_folder, real_images):
    env = jax_without_tensorflow
    probe = subprocess.run([sys.executable, "-c", "import tensorflow"], env=env, capture_output=True, text=True)
    assert probe.returncode == 1 and "No module named 'tensorflow'" in probe.stderr
    run = tmp_path / "run"
    # images the run never saw (the same three classes, the next ten of each)
    from automl_tl.demo import write_image_folder

    images, labels, names = real_images
    held = write_image_folder(tmp_path / "held-out", images, labels, names, per_class=10, classes=(0, 1, 7), offset=12)
    files = sorted(held.glob("*/*.png"))
    # a fine-tuning trial trains on the input pipeline (tf.data before: failed without TensorFlow)
    fit = ["fit", str(image_folder), "--trials", "1", "--run-dir", str(run), "--backbones", "mobilenetv2",
           "--strategies", "fine_tune_top", "--quiet", "--no-report"]
    predict = ["predict", str(run), *map(str, files), "--json"]
    out = subprocess.run([sys.executable, "-c", FIT_THEN_PREDICT, json.dumps(fit), json.dumps(predict)],
                         env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.strip().splitlines()
    assert "FIT 0" in lines and lines[-1] == "PREDICT 0", out.stdout[-2000:] + out.stderr[-3000:]
    import csv

    rows = list(csv.DictReader((run / "leaderboard.csv").open()))  # the study's view
    assert {r["state"] for r in rows} <= {"COMPLETE", "WAITING"}, rows  # none failed
    assert any(r["state"] == "COMPLETE" and r["strategy"] == "fine_tune_top" for r in rows)
    # the model learnt
    got = [json.loads(line)["label"] for line in lines if line.startswith("{")]
    assert len(got) == len(files) == 30
    accuracy = sum(g == f.parent.name for g, f in zip(got, files)) / len(files)
    assert accuracy >= 0.6, accuracy  # chance is 0.33; T-shirt, trouser and sneaker are far apart
