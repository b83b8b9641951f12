"""The sources a dataset comes from (speakers, sessions, authors), found without being named, and
what the run does with them: grouped folds, the user's --group-column / --no-groups first, exit 2
for groupings that cannot be validated by, warnings for classes seen from one source only."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from automl_tl import grouping, sources
from automl_tl.data import evaluation_plan, load_data
from automl_tl.errors import DataError


# ------------------------------------------------------------------ detectors on names and values
def _speech_names(voices=("jackson", "nicolas", "theo"), digits=range(4), takes=3):
    names, labels = [], []
    for d in digits:
        for v in voices:
            for t in range(takes):
                names.append(f"/data/{d}/{v}_{130 + 30 * t}_{50}.wav")
                labels.append(str(d))
    return names, labels


def test_a_voice_in_the_file_names_is_found_and_the_numbers_beside_it_are_not():
    names, labels = _speech_names()
    found = sources.from_file_names(names, labels)
    assert found is not None and found.detector == "file names"
    assert set(found.groups) == {"jackson", "nicolas", "theo"}
    assert found.how == "the first part of the file names"
    assert "3 sources" in found.describe() and "jackson" in found.describe()


def test_speech_commands_hashes_are_speakers():
    rng = np.random.default_rng(0)
    speakers = [f"{rng.integers(0, 2**32):08x}" for _ in range(12)]
    names, labels = [], []
    for word in ("yes", "no", "up"):
        for s in speakers:
            for n in range(2):
                names.append(f"/sc/{word}/{s}_nohash_{n}.wav")
                labels.append(word)
    found = sources.detect(names, labels, root="/sc", modality="audio")
    assert found is not None and set(found.groups) == set(speakers)
    assert found.unit == "speakers"  # "nohash" is constant, the counter a number: neither is taken


@pytest.mark.parametrize("names", [
    [f"/d/{c}/IMG_{i:04d}.jpg" for c in ("a", "b") for i in range(20)],           # a camera's counter
    [f"/d/{c}/{c}.{i}.jpg" for c in ("cat", "dog") for i in range(20)],            # dogs-vs-cats
    [f"/d/{c}/{c}_{i}.jpg" for c in ("Abyssinian", "pug") for i in range(20)],     # the label itself
    [f"/d/{c}/{1000 + 2 * i + (c == 'b')}_{i + 100 * (c == 'b'):06x}ab_n.jpg" for c in ("a", "b") for i in range(20)],  # unique ids
    # ESC-50: fold-clip-take-target; the take letter is "A" on most clips: no source
    [f"/d/{c}/{1 + i % 5}-{10000 + i}-{'A' if i % 7 else 'B'}-{c}.wav" for c in ("dog", "rain") for i in range(30)],
])
def test_names_that_name_no_source_find_none(names):
    labels = [n.split("/")[2] for n in names]
    assert sources.detect(names, labels, root="/d") is None


def test_a_folder_level_below_the_classes_is_found():
    names = [f"/root/{c}/{s}/{i}.png" for c in ("cat", "dog") for s in ("cam1", "cam2", "cam3") for i in range(4)]
    labels = [n.split("/")[2] for n in names]
    found = sources.detect(names, labels, root="/root")
    assert found is not None and found.detector == "folder"
    assert set(found.groups) == {"cam1", "cam2", "cam3"}


def test_a_column_named_like_a_source_is_found_and_an_item_id_is_not():
    labels = ["pos", "neg"] * 30
    columns = {"review_id": [f"r{i}" for i in range(60)],                      # one per row: an item id
               "stars": [str(i % 5) for i in range(60)],                        # not named like a source
               "authorName": [f"author{i % 6}" for i in range(60)]}
    found = sources.from_columns(columns, labels)
    assert found is not None and found.how == "column 'authorName'" and found.unit == "authors"
    assert found.n == 6


def test_an_id_whose_prefix_recurs_names_the_source():
    labels = [c for c in ("a", "b", "c") for _ in range(12)]
    ids = [f"spk{i % 4:02d}_utt{i:03d}" for i in range(36)]
    found = sources.from_columns({"utterance_id": ids}, labels)
    assert found is not None and set(found.groups) == {"spk00", "spk01", "spk02", "spk03"}


def test_near_duplicate_clusters_in_features_are_found_and_plain_features_are_not():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(30, 16))
    y = np.repeat(np.arange(3), 10)  # 30 photos of 3 classes, each photographed 4 times (a burst)
    x = np.concatenate([centres + 0.01 * rng.normal(size=centres.shape) for _ in range(4)])
    labels = [str(v) for v in np.tile(y, 4)]
    found = sources.from_features(x, labels)
    assert found is not None and found.detector == "clusters" and found.n == 30
    for g in set(found.groups):  # each cluster is one photo's four shots
        members = [i for i, v in enumerate(found.groups) if v == g]
        assert len(members) == 4 and len({i % 30 for i in members}) == 1
    assert sources.from_features(rng.normal(size=(120, 16)), labels * 1) is None


# ------------------------------------------------------------------ through the loader
def _png(path, value):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), value, dtype=np.uint8)).save(path)


def _modalities():
    from automl_tl.plugin_manager import get_plugin_manager

    return get_plugin_manager().modalities


def test_load_data_finds_a_folder_level_and_a_table_column(tmp_path):
    for c, v in (("cat", 10), ("dog", 200)):
        for s in ("session1", "session2", "session3"):
            for i in range(3):
                _png(tmp_path / "img" / c / s / f"{i}.png", v + i + 10 * int(s[-1]))
    data = load_data(tmp_path / "img", modalities=_modalities())
    assert data.found is not None and data.found.detector == "folder"
    assert sorted(set(data.found.groups)) == ["session1", "session2", "session3"]

    table = tmp_path / "t.csv"
    rows = ["text,label,speaker"] + [f"utterance number {i} of many,{'ab'[i % 2]},s{i % 5}" for i in range(40)]
    table.write_text("\n".join(rows) + "\n")
    data = load_data(table, modalities=_modalities())
    assert data.found is not None and data.found.how == "column 'speaker'" and data.found.n == 5


def _texts(n=40, speakers=5):
    import dataclasses

    from automl_tl.data import LabelledData

    labels = tuple("ab"[i % 2] for i in range(n))
    found = sources.FoundGroups(groups=tuple(f"s{i % speakers}" for i in range(n)), detector="column",
                                how="column 'speaker'", unit="speakers")
    data = LabelledData(modality="text", items=tuple(f"text {i}" for i in range(n)), labels=labels,
                        source="t.csv", found=found)
    return data, dataclasses


def test_the_run_validates_by_the_sources_found_and_holds_each_out_whole():
    data, _ = _texts()
    data, record = grouping.resolve(data)
    assert record["used"] and record["unit"] == "speaker" and data.groups is not None
    y = np.array([0 if v == "a" else 1 for v in data.labels])
    plan = evaluation_plan(data, y)
    for train, val in plan.folds:
        assert not {data.groups[i] for i in train} & {data.groups[i] for i in val}


def test_the_users_group_column_and_no_groups_win_over_the_guess():
    data, dc = _texts()
    given = dc.replace(data, groups=tuple(f"g{i % 2}{i % 3}" for i in range(len(data.items))))
    resolved, record = grouping.resolve(given, column="site")
    assert record["detector"] == "given" and record["how"] == "column 'site'"
    assert resolved.groups == given.groups  # not the speakers found
    resolved, record = grouping.resolve(data, detect=False)
    assert not record["used"] and record["reason"] == "--no-groups" and resolved.groups is None


def test_one_group_is_exit_2_with_the_reason():
    data, dc = _texts()
    with pytest.raises(DataError, match="holds one group .* two or more"):
        grouping.resolve(dc.replace(data, groups=("only",) * len(data.items)), column="site")


def test_classes_seen_from_one_source_are_warned_about(caplog):
    data, dc = _texts()
    # class "a" from speaker s0 only; "b" from s1..s4
    groups = tuple("s0" if y == "a" else f"s{1 + i % 4}" for i, y in enumerate(data.labels))
    with caplog.at_level(logging.WARNING, logger="automl_tl"):
        resolved, record = grouping.resolve(dc.replace(data, found=dc.replace(data.found, groups=groups)))
    assert record["used"] and record["confounded"] == ["a"]
    assert "come from one speaker only" in caplog.text
    # every class from one speaker (language id, one speaker per language): no grouped folds
    groups = tuple("s0" if y == "a" else "s1" for y in data.labels)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="automl_tl"):
        resolved, record = grouping.resolve(dc.replace(data, found=dc.replace(data.found, groups=groups)))
    assert not record["used"] and resolved.groups is None
    assert "new items by known speakers" in caplog.text


# ------------------------------------------------------------------ the CLI's exit 2
def test_cli_group_column_missing_or_single_is_exit_2(tmp_path, capsys):
    from automl_tl.cli import main  # the command line in this process: its exit code and its words

    table = tmp_path / "t.csv"
    table.write_text("text,label,site\n" + "".join(f"a text number {i},{'ab'[i % 2]},one\n" for i in range(30)))
    capsys.readouterr()
    assert main(["fit", str(table), "--group-column", "hospital", "--trials", "1", "--run-dir", str(tmp_path / "r1")]) == 2
    err = capsys.readouterr().err
    assert "hospital" in err and len(err.strip().splitlines()) <= 3, err
    assert main(["fit", str(table), "--group-column", "site", "--trials", "1", "--run-dir", str(tmp_path / "r2")]) == 2
    err = capsys.readouterr().err
    assert "holds one group ('one')" in err, err


# ------------------------------------------------------------------ a score on one held-out source
def test_a_score_on_one_held_out_source_must_beat_the_probes_by_more_than_sources_differ():
    """A fine-tuned trial scored on the one session of the hold-out split, against a probe
    cross-validated over every session: on that session's 60 items the fine-tuned one is ahead by
    9 points, beyond the items' own noise, but sessions differ by 12 points (the probe's per-session
    spread), so it is a tie and the simpler probe is delivered."""
    from automl_tl.evaluation import Candidate, complexity, select
    from automl_tl.metrics import metric_function

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 240)
    session0 = np.arange(60)
    right = np.zeros(240, bool)
    right[:50] = True  # the probe: 50 of session 0's 60 items, 142 of the other 180 (0.80 in all)
    right[60 + rng.permutation(180)[:142]] = True
    probe_pred = np.where(right, y, (y + 1) % 3)
    tuned_right = right[:60].copy()
    tuned_right[50:55] = True  # the fine-tuned trial: 55 of session 0's 60 (0.917)
    tuned_pred = np.where(tuned_right, y[session0], (y[session0] + 1) % 3)
    metric = metric_function("accuracy")
    probe = Candidate(trial=0, score=float(metric(y, probe_pred)), se=0.025, complexity=complexity(0, 0, False),
                      index=np.arange(240), pred=probe_pred)
    spread = grouping.spread_term(0.12, 1)
    assert spread == pytest.approx(0.12) and grouping.spread_term(0.12, 3) == 0.0
    tuned = dict(trial=1, score=float(metric(y[session0], tuned_pred)), complexity=complexity(1, 0, False),
                 index=session0, pred=tuned_pred)
    # without the spread the fine-tuned trial wins on its one session
    assert select([probe, Candidate(se=0.03, **tuned)], y=y, metric=metric).trial == 1
    sel = select([probe, Candidate(se=float(np.hypot(0.03, spread)), spread=spread, **tuned)], y=y, metric=metric)
    assert sel.trial == 0 and sel.top_trial == 1
