"""What ``--mlflow URI`` costs a fit (issue 34): the MLflow mirror (automl_tl.tracking) of a
study of ``--trials`` finished trials, each with a learning curve of ``--epochs`` epochs, into a
fresh SQLite store in a temporary folder. Prints, in one run: the store's creation (MLflow makes
its tables once), the per-trial callback the search calls after each trial (median and max), the
end-of-fit sync with nothing missing (a resumed fit's), and how long a fit waits on a tracking
server that is down (a closed port on 127.0.0.1) before its one warning.

    .venv/bin/python benchmarks/bench_tracking.py [--trials 100] [--epochs 20]

The study is made in memory with the user attributes the search writes (automl_tl.schema.ATTR);
no model is trained, so the figures are tracking's own cost, not a fit's.
"""

from __future__ import annotations

import argparse
import logging
import socket
import statistics
import tempfile
import time
from pathlib import Path

import optuna


def _study(n: int, epochs: int) -> optuna.Study:
    study = optuna.create_study(direction="maximize")
    dists = {"backbone": optuna.distributions.CategoricalDistribution(["mobilenetv2", "vgg16"]),
             "head_lr": optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True),
             "head_units": optuna.distributions.CategoricalDistribution([0, 128, 256])}
    for i in range(n):
        curve = [{"phase": "head", "epoch": e + 1, "loss": 1.0 / (e + 1), "val_score": 0.5 + e / (3 * epochs)}
                 for e in range(epochs)]
        study.add_trial(optuna.trial.create_trial(
            params={"backbone": "mobilenetv2", "head_lr": 10 ** (-1 - 3 * i / n), "head_units": 128},
            distributions=dists, value=0.8 + i / (10 * n), state=optuna.trial.TrialState.COMPLETE,
            user_attrs={"strategy": "feature_extraction", "score_se": 0.03, "seconds": 1.5, "n_eval": 200,
                        "evaluation": "holdout", "history": curve}))
    return study


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--epochs", type=int, default=20)
    args = ap.parse_args()
    logging.getLogger("automl_tl").setLevel(logging.ERROR)  # the server-down warning is measured, not shown
    from automl_tl.tracking import Tracker

    study = _study(args.trials, args.epochs)
    trials = study.get_trials(deepcopy=False)
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        t0 = time.perf_counter()
        tracker = Tracker(uri, Path(tmp) / "run")
        import mlflow

        mlflow.MlflowClient(uri).search_experiments()  # creates the tables
        created = time.perf_counter() - t0
        callback = tracker.callbacks()[0]
        per_trial = []
        for t in trials:  # as the search calls it after each trial: the study as it stands then
            view = _Prefix(study, t.number + 1)
            t1 = time.perf_counter()
            callback(view, t)
            per_trial.append(time.perf_counter() - t1)
        t1 = time.perf_counter()
        Tracker(uri, Path(tmp) / "run").finish(study)
        resync = time.perf_counter() - t1
        assert not tracker.broken
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    down = Tracker(f"http://127.0.0.1:{port}", "run")
    t1 = time.perf_counter()
    down.finish(study)
    waited = time.perf_counter() - t1
    assert down.broken
    print(f"{args.trials} trials, {args.epochs} epochs of learning curve each, SQLite store")
    print(f"store created (MLflow's tables, once):      {created:.2f} s")
    print(f"per-trial callback: median {1000 * statistics.median(per_trial):.0f} ms, "
          f"max {1000 * max(per_trial):.0f} ms (the first connects)")
    print(f"end-of-fit sync, nothing missing (a resume): {resync:.2f} s")
    print(f"tracking server down (closed port): the fit waits {waited:.1f} s, then one warning")


class _Prefix:
    """The study as the search's callback sees it after trial ``n - 1``: its first ``n`` trials."""

    def __init__(self, study, n: int) -> None:
        self._study, self._n = study, n
        self.user_attrs = study.user_attrs

    def get_trials(self, deepcopy: bool = False):
        return self._study.get_trials(deepcopy=deepcopy)[: self._n]


if __name__ == "__main__":
    main()
