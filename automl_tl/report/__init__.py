"""Strategy comparison reports: what won, why, at what cost, and whether the strategy table held.

- :func:`build_report` -> every number of one run's report (the content of ``report.json``)
- :func:`write_report` -> ``report.html`` (one self-contained file), ``report.md``, ``report.json``
- :func:`write_comparison` -> ``compare.html/.md/.json`` across runs of one task at different sizes
- :func:`evaluate_labelled` / :func:`write_evaluation` -> a delivered model on new labelled data:
  ``evaluation.json`` and ``evaluation.html``

Matplotlib is used through its Agg canvas only; importing this package does not import TensorFlow.
"""

from __future__ import annotations

from automl_tl.report._build import build_report
from automl_tl.report._compare import build_comparison, write_comparison
from automl_tl.report._evaluation import evaluate_labelled, evaluation_record, write_evaluation
from automl_tl.report._write import write_report

__all__ = ["build_report", "write_report", "build_comparison", "write_comparison", "evaluate_labelled",
           "evaluation_record", "write_evaluation"]
