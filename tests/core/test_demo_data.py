"""The offline demo datasets are real data written the way a user would hand it over."""

import pandas as pd

from automl_tl.demo import make_demo, make_text_demo


def test_image_demo_folder(tmp_path):
    out = make_demo(tmp_path / "img", per_class=3, classes=(0, 1))
    folders = sorted(p.name for p in out.iterdir())
    assert len(folders) == 2 and all(len(list((out / f).glob("*.png"))) == 3 for f in folders)


def test_text_demo_table(tmp_path):
    path = make_text_demo(tmp_path / "rt.csv", per_class=20)
    frame = pd.read_csv(path)
    assert list(frame.columns) == ["text", "label"]
    assert frame.label.value_counts().to_dict() == {"fresh": 20, "rotten": 20}
    assert frame.text.str.len().min() > 0
