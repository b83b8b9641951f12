"""A strategy a plugin registers is compared in the report exactly like a built-in one.

The runs are fabricated the way the engine records one (conftest: an Optuna study whose trials
carry the schema's user attributes). The same run is reported twice: as searched, and with its
``fine_tune_top`` trials renamed to docs/example_plugin's BitFit (installed as a user installs
it), which declares the same simplicity rank. Both reports must say the same thing, name for name.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

import pytest

from automl_tl.report import build_comparison, build_report
from automl_tl.report._fmt import esc
from automl_tl.report._render import render_html, render_markdown

from .conftest import make_run, write_rows

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "example_plugin"
BUILTIN, PLUGIN = "fine_tune_top", "bitfit"


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """The strategies registered with the BitFit example installed through its entry point."""
    from automl_tl.plugin_manager import PluginManager
    from automl_tl.testing import install_plugin_package

    with pytest.MonkeyPatch.context() as mp:
        install_plugin_package(EXAMPLE / "automl_tl_bitfit", entry_name="bitfit",
                               site=tmp_path_factory.mktemp("site"), monkeypatch=mp)
        reg = PluginManager(autoload=True).strategies
        assert PLUGIN in reg and reg.plugin_of(PLUGIN) == "bitfit"
        return reg


def _rename_strategy(run: Path, old: str, new: str) -> None:
    """The same run, strategy ``old`` named ``new``: in its files and in every text of its study
    (the trials' strategy attribute, the ``strategy`` parameter's choices)."""
    for path in run.iterdir():
        if path.suffix in (".json", ".csv"):
            path.write_text(path.read_text().replace(old, new))
    with sqlite3.connect(run / "study.db") as con:
        for (table,) in con.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall():
            for _, col, kind, *_ in con.execute(f"PRAGMA table_info({table})").fetchall():
                if kind.upper().startswith(("TEXT", "VARCHAR")):
                    con.execute(f"UPDATE {table} SET {col} = replace({col}, ?, ?)", (f'"{old}"', f'"{new}"'))
    con.close()


def _same_run_twice(root: Path) -> tuple[Path, Path]:
    kw = dict(rec_strategy=BUILTIN, winner=BUILTIN, seed=4)
    builtin, plugin = make_run(root, "builtin", **kw), make_run(root, "plugin", **kw)
    _rename_strategy(plugin, BUILTIN, PLUGIN)
    return builtin, plugin


def _comparable(report: dict, name: str) -> dict:
    """``report`` with strategy ``name`` called "S" and the lines that name its own plugin and
    description blanked: what is left is what the report says of the strategy's trials."""
    out = json.loads(json.dumps(report).replace(f'"{name}"', '"S"').replace(name, "S"))
    for row in out["strategies"]:
        if row["strategy"] == "S":
            row.update(plugin=None, description=None)
    return out


def test_a_plugin_strategy_is_compared_like_the_built_in_it_resembles(tmp_path, registry):
    builtin, plugin = _same_run_twice(tmp_path)
    a, b = build_report(builtin, strategies=registry), build_report(plugin, strategies=registry)
    row_a = next(s for s in a["strategies"] if s["strategy"] == BUILTIN)
    row_b = next(s for s in b["strategies"] if s["strategy"] == PLUGIN)
    assert (row_a["rank"], row_a["fine_tunes"], row_a["plugin"]) == (1, True, "automl_tl_strategies")
    assert (row_b["rank"], row_b["fine_tunes"], row_b["plugin"]) == (1, True, "bitfit")
    assert row_b["description"] == registry.get(PLUGIN).description
    # simplest first by what each declares: frozen (0), part of the network (1), all of it (2)
    assert a["matrix"]["strategies"] == ["feature_extraction", BUILTIN, "fine_tune_all"]
    assert b["matrix"]["strategies"] == ["feature_extraction", PLUGIN, "fine_tune_all"]
    assert b["winner_strategy"] == PLUGIN and b["recommended"]["strategy"] == PLUGIN and row_b["recommended"]
    same_a, same_b = _comparable(a, BUILTIN), _comparable(b, PLUGIN)
    for key in ("strategies", "matrix", "learning_curves", "tied_strategies", "strategy_held", "strategy_verdict",
                "headline", "leaderboard", "optimisation_history", "pareto", "recommended", "best", "delivered"):
        assert same_b[key] == same_a[key], key

    # and rendered alike: the same pages but for the name (and, in HTML, the description it gives)
    for r in (a, b):
        r.update(run_dir="RUN", run_name="RUN", generated_at="NOW")
    assert render_markdown(b, {}) == render_markdown(a, {}).replace(BUILTIN, PLUGIN)
    html_a, html_b = render_html(a, {}), render_html(b, {})
    assert html_b == html_a.replace(esc(row_a["description"]), esc(row_b["description"])).replace(BUILTIN, PLUGIN)
    assert f'{PLUGIN} <span class="badge warn">recommended</span> <span class="badge ok">winner</span><br>' in html_b


def test_the_runs_record_of_its_strategies_needs_no_plugin_installed(tmp_path, registry):
    """What the engine recorded of its strategies (summary.json "strategies") is read first: the
    report of a run with a plugin strategy needs no registry where it is written."""
    _, plugin = _same_run_twice(tmp_path)
    with_registry = build_report(plugin, strategies=registry)
    summary = json.loads((plugin / "summary.json").read_text())
    summary["strategies"] = [{"name": s.name, "rank": s.rank, "fine_tunes": s.fine_tunes, "description": s.description,
                              "plugin": registry.plugin_of(s.name)} for s in registry]
    (plugin / "summary.json").write_text(json.dumps(summary))
    recorded = build_report(plugin)
    for key in ("strategies", "matrix", "learning_curves", "headline"):
        assert recorded[key] == with_registry[key], key
    assert build_comparison([plugin])["strategies"] == ["feature_extraction", PLUGIN, "fine_tune_all"]


def test_undeclared_strategies_come_after_the_declared_ones_in_the_order_tried(tmp_path, registry):
    """A strategy nothing declares (its plugin not installed here, nor recorded by the run) is still
    compared, after the declared ones, in the order the run first tried it; so is every strategy of
    a run reported without declarations."""
    run = make_run(tmp_path, "run", seed=2)
    with (run / "leaderboard.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    by_trial = sorted(rows, key=lambda r: int(r["trial"]))
    for r, name in zip(by_trial[:3], ["zeta_plugin", "alpha_plugin", "lp_ft"]):
        r["strategy"] = name
    write_rows(run, rows)
    tried = [r["strategy"] for r in by_trial]
    first = list(dict.fromkeys(tried))
    report = build_report(run, strategies=registry)
    declared = sorted((s for s in first if s in registry), key=lambda s: (registry.get(s).rank, first.index(s)))
    assert report["matrix"]["strategies"] == declared + ["zeta_plugin", "alpha_plugin"]
    assert [s["strategy"] for s in report["strategies"]] == report["matrix"]["strategies"]
    undeclared = next(s for s in report["strategies"] if s["strategy"] == "zeta_plugin")
    assert (undeclared["rank"], undeclared["description"], undeclared["plugin"]) == (None, None, None)
    assert undeclared["n_trials"] == 1
    assert build_report(run)["matrix"]["strategies"] == first
