"""`automl-tl fit` on a folder whose file names name a few speakers, run as a user runs it: it
says so, validates by speaker, and the report says what to expect on a new speaker."""

from __future__ import annotations

import json
import shutil

import pytest
from automl_tl.testing import missing


@pytest.mark.slow
def test_fit_finds_the_speakers_in_the_file_names_and_validates_by_them(tmp_path, digits_module, capsys,
                                                                       forked_cli):
    if shutil.which("espeak-ng") is None:
        missing("espeak-ng is not installed (apt-get install espeak-ng)")
    data = tmp_path / "digits"
    digits_module.make_dataset(data, voices=["en-us", "en-gb", "en-us+f2"], speeds=[140, 180], pitches=[50],
                               digits=range(4))
    (data / "metadata.csv").unlink()  # nothing names the voices but the file names
    run = tmp_path / "run"
    r = forked_cli.run(["fit", str(data), "--trials", "4", "--run-dir", str(run), "--backbones", "speech-embedding,mfcc"],
                       timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    said = r.stdout + r.stderr
    assert "groups: 3 speakers from the first part of the file names (" in said
    assert "--no-groups to ignore" in said

    summary = json.loads((run / "summary.json").read_text())
    nd = summary["on_new_data"]
    assert nd["grouped"] and nd["unit"] == "speaker" and nd["grouping"]["detector"] == "file names"
    assert sorted(nd["grouping"]["names"]) == ["en-gb", "en-us", "en-us-f2"]
    assert "new speakers" in nd["sentence"] and nd["interval"][0] <= nd["estimate"] <= nd["interval"][1]
    assert {row["backbone"] for row in nd["random_vs_grouped"]} == {"speech-embedding", "mfcc"}
    assert summary["task"]["groups"] == "found"

    split = json.loads((run / "split.json").read_text())  # the hold-out split: no voice on both sides
    def voice(path):
        return path.rsplit("/", 1)[-1].split("_")[0]
    assert not {voice(p) for p in split["train"]["items"]} & {voice(p) for p in split["val"]["items"]}

    report = (run / "report.md").read_text()
    assert "## On new data" in report and "on new speakers" in report

    # --no-groups: random folds, said in the record (a new run directory: the grouping is part of the task)
    from automl_tl.cli import main  # the command line in this process: its exit code and its words

    capsys.readouterr()
    code = main(["fit", str(data), "--trials", "4", "--run-dir", str(run), "--backbones", "mfcc", "--no-groups"])
    assert code == 2 and "the grouping" in capsys.readouterr().err  # resuming under another grouping is refused
