"""The run directory's views of the study (the leaderboard), the saved model and loading it back."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from automl_tl.atomic import atomic_write_json, atomic_write_text
from automl_tl.errors import NotFittedError
from automl_tl.schema import LEADERBOARD_COLUMNS, STUDY_NAME, trial_rows

__all__ = ["atomic_write_text", "atomic_write_json", "write_leaderboard", "leaderboard_rows",
           "save_model", "load_predictor", "Predictor", "LEADERBOARD_COLUMNS", "STUDY_NAME"]

def leaderboard_rows(study) -> list[dict]:
    return trial_rows(study.get_trials(deepcopy=False))


def write_leaderboard(study, path) -> list[dict]:
    rows = leaderboard_rows(study)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=LEADERBOARD_COLUMNS)
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(path, buf.getvalue())
    return rows


# ------------------------------------------------------------------------------ model
def save_model(run_dir, *, model, config: Mapping[str, Any], labels: Sequence[str], adapter,
               val_predictions: Sequence[Mapping] | None = None) -> None:
    """Write model.keras, config.json, labels.json and assets/ so that no file is ever half
    written: everything goes to a temporary folder first, then each file is moved into place."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=run_dir))
    try:
        model.save(staging / "model.keras")
        (staging / "assets").mkdir()
        adapter.save_assets(str(staging / "assets"))
        assets = run_dir / "assets"
        old = None
        if assets.exists():
            old = run_dir / f".assets-old-{os.getpid()}"
            os.replace(assets, old)
        os.replace(staging / "assets", assets)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        os.replace(staging / "model.keras", run_dir / "model.keras")
        atomic_write_json(run_dir / "labels.json", list(labels))
        atomic_write_json(run_dir / "config.json", dict(config))
        if val_predictions is not None:
            buf = io.StringIO()
            w = csv.DictWriter(buf, fieldnames=("item", "label", "predicted", "probability"))
            w.writeheader()
            w.writerows(val_predictions)
            atomic_write_text(run_dir / "val_predictions.csv", buf.getvalue())
    finally:
        shutil.rmtree(staging, ignore_errors=True)


class Predictor:
    """A saved model plus what turns raw inputs into its inputs."""

    def __init__(self, run_dir, *, plugin_manager=None) -> None:
        from automl_tl.plugin_manager import get_plugin_manager
        from automl_tl.weights import ResolvedWeights

        run_dir = Path(run_dir)
        cfg_path, model_path = run_dir / "config.json", run_dir / "model.keras"
        if not model_path.exists() or not cfg_path.exists():
            raise NotFittedError(f"{run_dir}: no saved model here (model.keras and config.json are "
                                 f"written when a search completes its first trial). Run "
                                 f"`automl-tl fit` first, or point to the right run directory.")
        pm = plugin_manager or get_plugin_manager()
        self.run_dir = run_dir
        self.config = json.loads(cfg_path.read_text())
        self.labels = list(json.loads((run_dir / "labels.json").read_text()))
        self.spec = pm.backbones.get(self.config["backbone"])
        self.modality = pm.modalities.get(self.spec.modality)
        assets = str(run_dir / "assets")
        self.adapter = self.spec.make_adapter(self.config["input_config"], None, assets)
        import keras

        try:
            self.model = keras.saving.load_model(model_path, compile=False)
        except (ValueError, OSError, zipfile.BadZipFile, KeyError, TypeError) as exc:
            # damaged or incomplete (a truncated zip, overwritten bytes), or refused by Keras' safe
            # mode because it holds code (a Lambda layer): all the user's to fix, none a bug here
            raise NotFittedError(
                f"{model_path} could not be loaded ({type(exc).__name__}): the file is damaged or "
                f"incomplete, or holds code that Keras' safe mode refuses. Rerun `automl-tl fit` to "
                f"rebuild it; if you wrote and trust a model with code, load it yourself with "
                f"keras.saving.load_model(path, safe_mode=False).") from exc
        self._featurize = None
        if self.config.get("featurize"):
            w = ResolvedWeights(backbone=self.spec.name, kind="assets", location=assets)
            self._featurize = self.spec.featurize(w, self.config["input_config"],
                                                  **self.config.get("options", {}))

    def check_inputs(self, items) -> tuple[list, list, list]:
        """The same checks as training: kept indices, the kept inputs as cleaned by the modality
        (what the model should see), and the counted skips."""
        result = self.modality.check(list(items))
        return list(result.keep), list(result.items), list(result.skips)

    def predict_proba(self, items, batch_size: int = 32) -> np.ndarray:
        from automl_tl.batching import predict_proba_items

        return predict_proba_items(self.model, self.adapter, list(items), batch_size,
                                   featurize=self._featurize, n_classes=len(self.labels))

    def predict(self, items) -> list[str]:
        return [self.labels[i] for i in np.argmax(self.predict_proba(items), axis=1)]


def load_predictor(run_dir, **kw) -> Predictor:
    return Predictor(run_dir, **kw)
