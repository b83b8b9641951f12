"""Presets (automl_tl.presets): what each fills, what the user's own settings override, the
candidate set each keeps of the real registry, and one real fit that records what it ran with."""

import json

import pytest

from automl_tl import presets
from automl_tl.cli import main
from automl_tl.errors import ConfigError
from automl_tl.estimator import AutoTransfer


def test_balanced_is_the_default_and_the_former_defaults():
    s = presets.settings(AutoTransfer())
    assert s.preset == "balanced" == presets.DEFAULT_PRESET
    assert (s.trials, s.time_budget, s.strategies, s.patience, s.ensemble, s.compare_strategies,
            s.pretrained) == (20, None, None, 15, True, False, None)


def test_a_preset_fills_what_is_left_unset_and_the_user_overrides_it():
    fast = presets.settings(AutoTransfer(preset="fast"))
    assert (fast.trials, fast.time_budget, list(fast.strategies), fast.patience, fast.pretrained) == \
        (8, "2m", ["feature_extraction"], 4, 2)
    # given settings win, falsy ones included (patience 0: never stop early; no ensemble)
    mine = presets.settings(AutoTransfer(preset="fast", patience=0, ensemble=False, strategies=["lp_ft"],
                                         compare_strategies=True, backbones=["pixels"]))
    assert (mine.patience, mine.ensemble, list(mine.strategies), mine.compare_strategies) == (0, False, ["lp_ft"], True)
    assert mine.pretrained is None  # backbones named: those are the candidates
    # the budget is one setting: either of its parts replaces the preset's whole
    assert (presets.settings(AutoTransfer(preset="fast", trials=30)).trials,
            presets.settings(AutoTransfer(preset="fast", trials=30)).time_budget) == (30, None)
    assert (presets.settings(AutoTransfer(preset="best", time_budget="5m")).trials,
            presets.settings(AutoTransfer(preset="best", time_budget="5m")).time_budget) == (None, "5m")
    best = presets.settings(AutoTransfer(preset="BEST"))
    assert best.compare_strategies and best.strategies is None and best.time_budget == "20m" and best.opt_in


def test_unknown_preset_is_a_user_error():
    with pytest.raises(ConfigError, match="choose one of fast, balanced, best"):
        presets.settings(AutoTransfer(preset="quick"))


def test_cli_refuses_an_unknown_preset_with_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["fit", "data", "--preset", "quick"])
    assert exc.value.code == 2 and "invalid choice: 'quick'" in capsys.readouterr().err


def test_candidates_keep_the_classical_baseline_and_the_smallest_pretrained(pm):
    specs = pm.backbones.list(modality="image")
    kept = [s.name for s in presets.candidates(specs, 2)]
    pretrained = sorted((s for s in specs if not s.classical), key=lambda s: s.n_params)
    assert kept == [s.name for s in specs if s.classical or s in pretrained[:2]]
    assert "pixels" in kept and "mobilenetv2" in kept and "vgg16" not in kept
    assert presets.candidates(specs, None) == specs


def test_best_adds_the_opt_in_backbones_to_the_candidates(pm, tmp_path):
    from automl_tl.preparation import select_backbones

    opt_in = [s.name for s in pm.backbones.list(modality="image") if s.opt_in]
    assert "efficientnet-lite2" in opt_in  # lost to the defaults on every benchmark task: when asked for
    # an empty folder given for each (as --weights does): considered, then left out for want of a
    # checkpoint, and no checkpoint converted for this test
    local = {name: str(tmp_path) for name in opt_in}

    def names(**kw):
        kept, _, left_out = select_backbones(pm, "image", overrides=local, **kw)
        return {s.name for s in kept} | {x["backbone"] for x in left_out}

    assert not names() & set(opt_in)
    assert not names(slow=True) & set(opt_in)
    best = presets.settings(AutoTransfer(preset="best"))
    assert names(opt_in=best.opt_in, slow=best.slow) >= set(opt_in)


@pytest.mark.parametrize("preset, time_budget, expected", [
    ("balanced", None, False),   # no time limit: a 110 M encoder could take hours, so named only
    ("balanced", "2m", True),    # a budget: the probe times it and leaves it out if it cannot fit
    ("fast", None, False),       # fast: the two smallest, never the slow ones
    ("fast", "5m", False),
    ("best", None, True),
])
def test_slow_backbones_are_candidates_under_a_time_budget(pm, tmp_path, preset, time_budget, expected):
    from automl_tl.preparation import select_backbones

    slow = [s.name for s in pm.backbones.list(modality="text") if s.slow]
    assert "mpnet-base" in slow and not pm.backbones.get("mpnet-base").opt_in
    chosen = presets.settings(AutoTransfer(preset=preset, time_budget=time_budget))
    kept, _, left_out = select_backbones(pm, "text", overrides={n: str(tmp_path) for n in slow},
                                         opt_in=chosen.opt_in, slow=chosen.slow)
    considered = {s.name for s in kept} | {x["backbone"] for x in left_out}
    assert (set(slow) <= considered) is expected and (not set(slow) & considered) is (not expected)


@pytest.mark.slow
def test_a_fit_runs_and_records_its_preset(tmp_path, image_folder):
    # fast's strategies and patience, the user's trial count (which also drops fast's 2-minute clock)
    est = AutoTransfer(preset="fast", backbones=["pixels", "mobilenetv2"], trials=3, run_dir=str(tmp_path / "run"),
                       report=False, cache_dir=str(tmp_path / "cache")).fit(str(image_folder))
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["preset"] == {"preset": "fast", "trials": 3, "time_budget": None,
                                 "strategies": ["feature_extraction"], "compare_strategies": False,
                                 "patience": 4, "ensemble": True, "pretrained": None, "opt_in": False,
                                 "slow": False}
    assert summary["time_budget"] is None and [s["name"] for s in summary["strategies"]] == ["feature_extraction"]
    assert {t.params.get("strategy") for t in est.study_.trials} <= {"feature_extraction", None}
    assert est.get_params()["preset"] == "fast" and est.get_params()["patience"] is None  # params untouched
