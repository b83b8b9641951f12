"""The pruners ``--pruner`` chooses: what the engine reports to them (fine-tuning epochs, from
step 0) and what each then does, on real Optuna studies in SQLite and real Keras training."""

import json

import keras
import numpy as np
import optuna
import pytest

from automl_tl import AutoTransfer, ConfigError
from automl_tl.monitor import ValidationMonitor
from automl_tl.pruners import PRUNERS, make_pruner


def _study(tmp_path, name: str, earlier=(0.9, 0.8, 0.7)):
    """A study (its own SQLite file) in which earlier fine-tuning trials scored ``earlier`` at
    every epoch, through the monitor and the pruner as a search runs them."""
    db = tmp_path / f"{name}-{len(list(tmp_path.glob('*.db')))}.db"
    study = optuna.create_study(storage=f"sqlite:///{db}", direction="maximize", pruner=make_pruner(name))
    for v in earlier:
        trial = study.ask()
        try:
            _train(trial, v)
        except optuna.TrialPruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, v)
    return study


def _train(trial, score: float, epochs: int = 3) -> list:
    """Fine-tune a small Keras model for ``epochs``, the monitor scoring it ``score`` each epoch."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    history: list = []
    mon = ValidationMonitor(score_fn=lambda m: score, phase="fine_tune", history=history, patience=10, trial=trial)
    x, y = np.random.default_rng(0).normal(size=(16, 4)), np.arange(16) % 2
    model.fit(x, y, epochs=epochs, verbose=0, callbacks=[mon])
    return history


def test_successive_halving_keeps_only_the_best_third_where_the_median_keeps_the_better_half(tmp_path):
    # 0.86 after the second epoch: above the median of the complete trials (0.9 and 0.8: the 0.7
    # one was pruned), not in the best third of the four that reached the rung
    median = _study(tmp_path, "median")
    assert [t.state.name for t in median.trials] == ["COMPLETE", "COMPLETE", "PRUNED"]
    history = _train(median.ask(), 0.86)
    assert len(history) == 3  # ran every epoch

    halving = _study(tmp_path, "successive-halving")
    assert [t.state.name for t in halving.trials] == ["COMPLETE", "PRUNED", "PRUNED"]
    trial = halving.ask()
    with pytest.raises(optuna.TrialPruned, match="pruned at step 1"):
        _train(trial, 0.86)
    # the first epoch (step 0) is below the first rung: the cheap fidelity every trial gets
    assert list(halving.trials[-1].intermediate_values) == [0, 1]

    leader = _study(tmp_path, "successive-halving")
    assert len(_train(leader.ask(), 0.95)) == 3  # the best of the rung goes on


def test_no_pruner_runs_every_epoch_and_hyperband_knows_the_epoch_range(tmp_path):
    study = _study(tmp_path, "none")
    assert len(_train(study.ask(), 0.1)) == 3
    hb = make_pruner("hyperband", max_epochs=4)
    assert isinstance(hb, optuna.pruners.HyperbandPruner) and hb._max_resource == 3  # steps 0..3
    assert set(PRUNERS) == {"median", "successive-halving", "hyperband", "none"}
    with pytest.raises(ConfigError, match="choose one of"):
        make_pruner("asha")


def test_a_fit_uses_the_pruner_it_is_given_and_records_it(tmp_path, image_folder):
    with pytest.raises(ConfigError, match="unknown pruner"):
        AutoTransfer(backbones=["mobilenetv2"], trials=1, pruner="asha", report=False,
                     run_dir=str(tmp_path / "run")).fit(str(image_folder))
    assert not (tmp_path / "run").exists()  # refused before anything was written
    est = AutoTransfer(backbones=["mobilenetv2"], trials=3, run_dir=str(tmp_path / "run"), report=False,
                       patience=0, pruner="hyperband", strategies=["feature_extraction", "fine_tune_top"],
                       cache_dir=str(tmp_path / "cache")).fit(str(image_folder))
    assert isinstance(est.study_.pruner, optuna.pruners.HyperbandPruner)
    assert {t.state.name for t in est.study_.trials} <= {"COMPLETE", "PRUNED", "WAITING"}
    assert json.loads((est.run_dir_ / "summary.json").read_text())["pruner"] == "hyperband"
