"""Freezing rules, BatchNorm in inference mode, failed trials recorded, the CLI end to end."""

import json

import keras
import numpy as np
import pytest

from automl_tl import AutoTransfer, hookimpl
from automl_tl.cli import main
from automl_tl.testing import registered_strategies
from automl_tl.training import freeze


def _n_trainable(model):
    return int(sum(np.prod(v.shape) for v in model.trainable_weights))


@pytest.mark.parametrize("name", ["mobilenetv2", "vgg16"])
def test_strategies_train_different_weights(pm, name):
    spec = pm.backbones.get(name)
    model = spec.build(None, {"image_size": 64})
    counts = {}
    for strategy, n in (("feature_extraction", None), ("fine_tune_top", 1), ("fine_tune_top", 2),
                        ("fine_tune_all", None)):
        freeze(model, spec, strategy, n, strategies=registered_strategies())
        counts[(strategy, n)] = _n_trainable(model)
    assert counts[("feature_extraction", None)] == 0
    assert 0 < counts[("fine_tune_top", 1)] < counts[("fine_tune_top", 2)] < counts[("fine_tune_all", None)]
    bns = [l for l in model._flatten_layers() if isinstance(l, keras.layers.BatchNormalization)]
    assert all(not l.trainable for l in bns)  # BN stays in inference mode when fine-tuning
    # "all" really is all: every non-BN weight trains after a top-N freeze was undone
    non_bn = sum(np.prod(v.shape) for l in model._flatten_layers() if not isinstance(l, keras.layers.BatchNormalization)
                 and not list(l._flatten_layers(include_self=False)) for v in l.trainable_weights)
    assert counts[("fine_tune_all", None)] == non_bn


def test_top_blocks_change_bottom_blocks_do_not(pm):
    spec = pm.backbones.get("mobilenetv2")
    model = spec.build(spec.resolve_weights(), {"image_size": 64})
    blocks = spec.blocks(model)
    freeze(model, spec, "fine_tune_top", 2, strategies=registered_strategies())
    head = keras.layers.Dense(2)
    full = keras.Sequential([model, head])
    full.compile(optimizer=keras.optimizers.Adam(1e-2), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    before = [[w.numpy().copy() for l in b for w in l.weights] for b in blocks]
    x = np.random.default_rng(0).uniform(0, 255, (8, 64, 64, 3)).astype("float32")
    full.fit(x, np.array([0, 1] * 4), epochs=1, verbose=0)
    after = [[w.numpy() for l in b for w in l.weights] for b in blocks]
    changed = [any(not np.array_equal(a, b) for a, b in zip(x1, x2)) for x1, x2 in zip(before, after)]
    assert changed[-2:] == [True, True] and not any(changed[:-2])


class _Flaky:
    """A plugin whose backbone fails in trials that choose option 'broken'."""

    @hookimpl
    def automl_tl_register_backbones(self, registry):
        from dataclasses import replace

        from automl_tl_vision._backbones import specs

        base = specs()[0]

        def build(weights, input_config, mode="ok"):
            if mode == "broken":
                raise RuntimeError("simulated out-of-memory in build")
            return base.build(weights, input_config)

        registry.add(replace(base, name="flaky", build=build, options={"mode": ("broken", "ok")}))


def test_failed_trial_is_recorded_and_search_goes_on(tmp_path, image_folder):
    from automl_tl.plugin_manager import PluginManager

    pm = PluginManager(plugins=[_Flaky()])
    est = AutoTransfer(backbones=["flaky"], trials=4, run_dir=str(tmp_path / "run"), report=False,
                       strategies=["feature_extraction"], plugin_manager=pm, seed=1,
                       patience=0).fit(str(image_folder))
    # the probe of mode=broken failed and was left out, not fatal
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert any("simulated out-of-memory" in p.get("skipped", "") for p in summary["probe"])
    states = [t.state.name for t in est.study_.trials]
    assert "FAIL" in states and "COMPLETE" in states and len(states) == 4
    failed = [t for t in est.study_.trials if t.state.name == "FAIL"][0]
    assert "simulated out-of-memory" in failed.user_attrs["fail_reason"]
    assert "RuntimeError" in failed.user_attrs["traceback"]  # the record holds the traceback too
    board = (tmp_path / "run" / "leaderboard.csv").read_text()
    assert "simulated out-of-memory" in board


def test_cli_fit_predict_backbones_plugins(tmp_path, image_folder, capsys):
    run = tmp_path / "run"
    assert main(["fit", str(image_folder), "--trials", "1", "--run-dir", str(run), "--backbones",
                 "mobilenetv2", "--quiet", "--no-report"]) == 0
    out = capsys.readouterr().out
    assert "selected:" in out and "model.keras" in out and "refit" in out
    img = sorted(image_folder.glob("*/*.png"))[0]
    assert main(["predict", str(run), str(img), "--json"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["input"] == str(img) and line["label"] in {"t-shirt", "trouser", "sneaker", "0", "1", "7"}
    assert 0 <= line["probability"] <= 1
    # a folder stands for its images (sorted), a table for its rows (paths from the table's folder)
    cls = sorted(d for d in image_folder.iterdir() if d.is_dir())[0]
    assert main(["predict", str(run), str(cls), "--json"]) == 0
    got = capsys.readouterr()
    lines = [json.loads(x) for x in got.out.strip().splitlines()]
    assert [r["input"] for r in lines] == sorted(str(f) for f in cls.glob("*.png"))
    right = sum(r["label"] == cls.name for r in lines)  # the folder names the class: scored
    assert f"accuracy {right / len(lines):.4f} on the {len(lines)} inputs whose label the data gives" in got.err
    rel = [f"{image_folder.name}/{cls.name}/{r['input'].rsplit('/', 1)[1]}" for r in lines[:3]]
    (tmp_path / "new.csv").write_text("picture,note\n" + "".join(f"{r},x\n" for r in rel))
    assert main(["predict", str(run), str(tmp_path / "new.csv"), "--column", "picture", "--json"]) == 0
    again = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    assert [r["label"] for r in again] == [r["label"] for r in lines[:3]]
    assert [r["input"] for r in again] == rel  # shown as the table writes them, read from its folder
    assert main(["predict", str(run), str(tmp_path / "new.csv")]) == 2  # two columns, neither named
    assert "--column" in capsys.readouterr().err
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    assert main(["predict", str(run), str(bad)]) == 2
    assert "SKIPPED" in capsys.readouterr().out
    assert main(["backbones", "--modality", "image"]) == 0
    assert "mobilenetv2" in capsys.readouterr().out
    assert main(["plugins"]) == 0
    assert "automl_tl_vision" in capsys.readouterr().out
    assert main(["profile", str(image_folder), "--backbones", "mobilenetv2"]) == 0
    assert "recommended:" in capsys.readouterr().out


def test_help_explains_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    text = capsys.readouterr().out
    for opt in ("--trials", "--time-budget", "--run-dir", "--seed", "--storage", "--metric", "--backbones",
                "--weights", "--strategies"):
        assert opt in text


def test_every_command_has_a_description_and_the_data_help_names_every_layout(capsys):
    import re

    from automl_tl.cli._parser import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for name, p in sub.choices.items():
        assert p.description, f"`automl-tl {name} --help` has no description"
    with pytest.raises(SystemExit):
        main(["profile", "--help"])
    text = re.sub(r"\s+", " ", capsys.readouterr().out)
    for layout in ("sub-folder per class", "train/ val/ test/", "file names say the class", ".arrow",
                   "folder of tables by split", "save_to_disk"):
        assert layout in text


def test_log_level_sets_the_library_logger(tmp_path, capsys):
    import logging

    logger = logging.getLogger("automl_tl")
    before = logger.level
    try:
        assert main(["--log-level", "warning", "profile", str(tmp_path / "missing")]) == 2
        assert logger.level == logging.WARNING
        assert main(["--log-level", "DEBUG", "profile", str(tmp_path / "missing")]) == 2
        assert logger.level == logging.DEBUG
    finally:
        logger.setLevel(before)
    assert "no such file or folder" in capsys.readouterr().err


def test_weights_loaded_once_are_assigned_to_later_builds_and_never_changed_by_training(pm, monkeypatch):
    """A backbone built again gets the values its first load set, without reading the checkpoint
    again; training a built model does not change what later builds get."""
    from automl_tl import weights as weights_mod

    spec = pm.backbones.get("mobilenetv2")
    w = spec.resolve_weights()
    monkeypatch.setattr(weights_mod, "_LOADED", type(weights_mod._LOADED)())
    first = spec.build(w, {"image_size": 96})
    reads = []
    real_loader = w.loader
    monkeypatch.setattr(type(w), "loader", property(lambda self: lambda m, p: reads.append(p) or real_loader(m, p)),
                        raising=False)
    fresh = [v.numpy().copy() for v in first.weights]
    for v in first.weights:  # what a fine-tuning trial does to its model
        v.assign(v.numpy() + 1.0)
    again = spec.build(w, {"image_size": 128})  # another input size: the same variables
    assert reads == []
    for v, f in zip(again.weights, fresh):
        np.testing.assert_array_equal(v.numpy(), f)


def test_classifiers_on_one_frozen_build_save_and_load_as_fresh_builds_do(pm, tmp_path):
    """Two classifiers of one frozen configuration (a run's model saved during the search, then
    after the refit) wrap one build; each saved file loads alone and gives what a classifier on
    a fresh build of that configuration gives."""
    from automl_tl.training import assemble, build_at, classifier

    spec = pm.backbones.get("mobilenetv2")
    weights = spec.resolve_weights()
    cfg = {"image_size": 64}
    x = np.random.default_rng(0).uniform(0, 255, (4, 64, 64, 3)).astype("float32")
    heads = [keras.Sequential([keras.layers.Dense(3, activation="softmax", name=f"head{k}")]) for k in range(2)]
    first, second = (classifier(spec, weights, cfg, {}, h) for h in heads)
    shared = {id(l) for l in first.layers} & {id(l) for l in second.layers}
    assert len(shared) == 1 and first.layers[1] is second.layers[1]  # the backbone, built once
    for k, model in enumerate((first, second)):
        model.save(tmp_path / f"m{k}.keras")
        loaded = keras.saving.load_model(tmp_path / f"m{k}.keras", compile=False)
        fresh = assemble(build_at(spec, weights, cfg, {}, "float32"), heads[k])
        np.testing.assert_allclose(np.asarray(loaded.predict_on_batch(x)), np.asarray(fresh.predict_on_batch(x)),
                                   atol=1e-5)
    # another configuration: a build of its own
    other = classifier(spec, weights, {"image_size": 96}, {}, heads[0])
    assert other.layers[1] is not first.layers[1]


def test_the_metrics_give_scikit_learns_values():
    """automl_tl.metrics computes scikit-learn's definitions without its input checks (an
    evaluation's bootstrap calls each a thousand times): the same values on random labellings,
    with classes missing from either side, as integers and as strings."""
    import warnings

    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

    from automl_tl.metrics import METRICS

    reference = {"accuracy": accuracy_score, "balanced_accuracy": balanced_accuracy_score,
                 "macro_f1": lambda a, b: f1_score(a, b, average="macro")}
    rng = np.random.default_rng(0)
    names = np.array(["cat", "dog", "eel", "fox", "gnu"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn warns of a class one side lacks
        for i in range(400):
            n, k = int(rng.integers(1, 30)), int(rng.integers(1, 5))
            truth, pred = rng.integers(0, k, n), rng.integers(0, k + 1, n)
            if i % 2:
                truth, pred = names[truth], names[pred]
            for name, ref in reference.items():
                assert METRICS[name](truth, pred) == pytest.approx(ref(truth, pred), abs=1e-12), (name, truth, pred)
    with pytest.raises(ValueError):
        METRICS["macro_f1"]([0, 1], [0])
