"""The data package's shape: its public names where callers find them, and a light import."""

import subprocess
import sys

import automl_tl.data as data
import automl_tl.evaluation as evaluation


def test_every_public_name_is_found_in_automl_tl_data():
    for name in data.__all__:
        assert getattr(data, name) is not None, name
    # the evaluation plan lives beside evaluation and is the same function from either place
    assert data.evaluation_plan is evaluation.evaluation_plan
    assert data.duplicate_groups is evaluation.duplicate_groups


def test_importing_automl_tl_data_loads_neither_pandas_nor_keras_nor_the_cache():
    code = ("import sys, automl_tl.data; "
            "print(sorted(m for m in ('pandas', 'keras', 'tensorflow', 'sklearn', 'PIL', 'automl_tl.cache') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out
