"""The linear probe: a well-regularised logistic regression on frozen features.

It is the yardstick a transfer-learning tool has to beat (the five-line baseline users compare
against), so the engine uses it three times:

* to rank the candidate backbones by what their features do on this data (not by a similarity
  score whose scale differs between backbones);
* as the head of every feature-extraction trial with ``head_units=0``, so the recommended first
  trial is never weaker than the baseline;
* as the starting head of fine-tuning (LP-FT: Kumar et al., "Fine-Tuning can Distort Pretrained
  Features", ICLR 2022): fine-tuning starts from a head that already fits.

scikit-learn's ``LogisticRegression`` does the fitting (L2, lbfgs, standardised features); its
strength ``C`` is chosen by the run's folds. The fitted model becomes a Keras head
(``Normalization`` -> ``Dense(softmax)``) so the delivered ``model.keras`` needs no scikit-learn.
We do not use ``LogisticRegressionCV`` because the run's own folds (grouped, stratified, shared by
every trial) must decide, and we need the out-of-fold probabilities for the standard error and
the report.
"""

from __future__ import annotations

import concurrent.futures
import os
import time
import warnings
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np

from automl_tl._pages import as_rows, release, row_chunks
from automl_tl._pages import standardise as _standardise
from automl_tl.budget import NO_BUDGET, Budget

__all__ = ["C_GRID", "PROBE_ITEMS", "probe_sample", "ProbeResult", "linear_probe", "log_loss", "fit_logistic",
           "logistic_head", "one_blas_thread", "option_grid", "probe_candidates"]

#: strengths tried, strongest regularisation first; each fold walks the path with warm starts
#: and the walk stops once three strengths in a row score worse (weak regularisation is where
#: lbfgs is slow, and it rarely wins on small data)
C_GRID = tuple(float(c) for c in np.logspace(-4, 2, 13))

#: above this many items the candidates are ranked on a stratified sample of this many (a fixed
#: cost bounded as data grows: ranking needs a score within a point or two, not the fourth
#: decimal; at 2 000 items the standard error of an accuracy near 0.85 is about 0.8 points).
#: The trials still embed and score all items; the sample's features are reused for them.
PROBE_ITEMS = 2000

#: precision of the cross-validated walk over strengths (see :func:`linear_probe`)
WALK_DTYPE = np.float32


@dataclass(frozen=True, kw_only=True)
class ProbeResult:
    score: float
    se: float
    C: float
    oof_probs: np.ndarray  # (n_eval, n_classes): out-of-fold probabilities of ``eval_index``
    eval_index: np.ndarray  # the items they belong to
    scores_by_C: Mapping[float, float]
    seconds: float
    dim: int = 0  # feature dimensions


def one_blas_thread():
    """BLAS limited to one thread (threadpoolctl, which scikit-learn ships with): lbfgs on a few
    thousand items makes many small matrix products, and a multi-threaded OpenBLAS spends more
    time waking its threads than computing. Measured on 2 cores, 2 000 x 576 features, 10
    classes, 5 folds x 8 strengths: 10.3 s with BLAS threads, 2.8 s with one, 1.8 s with the
    folds on two threads of one BLAS thread each."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


#: features whose rows are at most this share non-zero (TF-IDF: about 1 %) are fitted as a sparse
#: matrix when their dense float64 copy would take more than SPARSE_ABOVE bytes (issue 35):
#: 80 000 texts x 16 384 TF-IDF dimensions are 10.5 GB as a dense float64 copy, some 200 MB as a
#: sparse one. Below that the dense fit is kept: the same model either way (see
#: :func:`_sparse_scale`), but lbfgs converges faster on centred features, so the two stop at
#: points that differ by its tolerance.
SPARSE_SHARE = 0.1
SPARSE_ABOVE = 2 * 2**30


def _mostly_zeros(x, rows=None) -> bool:
    """Whether the features ``x`` (the rows ``rows``) are to be fitted as a sparse matrix: their
    dense float64 copy would be over ``SPARSE_ABOVE`` bytes and the first 256 rows are at most
    ``SPARSE_SHARE`` non-zero."""
    if np.ndim(x) != 2 or np.shape(x)[1] < 64 or len(x) == 0:
        return False
    if (len(x) if rows is None else len(rows)) * np.shape(x)[1] * 8 <= SPARSE_ABOVE:
        return False
    if hasattr(x, "nnz"):  # the cache's sparse matrix (automl_tl.sparse_features): its share is known
        return x.nnz <= SPARSE_SHARE * len(x) * np.shape(x)[1]
    head = np.asarray(x[np.asarray(rows)[:256]] if rows is not None else x[:256])
    return head.size > 0 and np.count_nonzero(head) <= SPARSE_SHARE * head.size


def _sparse_rows(x, rows):
    """The rows ``rows`` of ``x`` as a float32 CSR matrix of the same values: straight from the
    cache's sparse matrix (:class:`~automl_tl.sparse_features.SparseRows`), else read from dense
    (often memory-mapped) features piece by piece, so that neither a dense copy nor the
    mapping's pages stay in memory, and assembled from its non-zeros (``csr_matrix`` of each dense
    piece, then ``vstack``, held each piece's coordinates as int64 and the matrix twice: 600 MB
    over 100 000 TF-IDF rows)."""
    from scipy import sparse

    from automl_tl.sparse_features import SparseRows, csr_parts

    rows = np.asarray(rows)
    if isinstance(x, SparseRows):
        return x.csr(rows)
    d = int(np.shape(x)[1])
    data, indices, counts = [], [], [np.zeros(1, dtype=np.int64)]
    for part in row_chunks(len(rows), d * 4):
        values, columns, per_row = csr_parts(x[rows[part]])
        data.append(values)
        indices.append(columns)
        counts.append(per_row)
        release(x)
    indptr = np.cumsum(np.concatenate(counts))
    return sparse.csr_matrix((np.concatenate(data) if data else np.zeros(0, np.float32),
                              np.concatenate(indices) if indices else np.zeros(0, np.int32), indptr),
                             shape=(len(rows), d))


def _row_pieces(m, n: int):
    """Pieces of ``n`` rows of the CSR matrix ``m`` whose float64 values take about 4 MB."""
    return row_chunks(n, 8 * max(1, m.nnz // max(1, m.shape[0])), 2**22)


def _sparse_moments(m, rows) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and variance (float64) of the rows ``rows`` of the CSR matrix ``m``."""
    d = m.shape[1]
    total, square = np.zeros(d), np.zeros(d)
    for part in _row_pieces(m, len(rows)):
        sub = m[rows[part]]
        values = sub.data.astype(np.float64)
        total += np.bincount(sub.indices, weights=values, minlength=d)
        square += np.bincount(sub.indices, weights=values * values, minlength=d)
    n = max(1, len(rows))
    mean = total / n
    return mean, np.maximum(square / n - mean ** 2, 0.0)


def _scaled_rows(m, rows, inverse_std: np.ndarray, dtype):
    """The rows ``rows`` of the CSR matrix ``m``, each column multiplied by ``inverse_std`` (in
    float64, as ``x @ diag(1 / std)`` computes it), as a new CSR matrix of ``dtype`` written into
    arrays allocated once at their final size."""
    from scipy import sparse

    lengths = (m.indptr[1:] - m.indptr[:-1])[rows]
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    data = np.empty(int(indptr[-1]), dtype=dtype)
    indices = np.empty(int(indptr[-1]), dtype=np.int32)
    for part in _row_pieces(m, len(rows)):
        sub = m[rows[part]]
        lo, hi = indptr[part.start], indptr[part.stop]
        data[lo:hi] = sub.data.astype(np.float64) * inverse_std[sub.indices]
        indices[lo:hi] = sub.indices
    return sparse.csr_matrix((data, indices, indptr), shape=(len(rows), m.shape[1]))


def _sparse_scale(m, rows) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_standardise`'s statistics for features held as the CSR matrix ``m``
    (:func:`_sparse_rows`): ``(mean, variance, 1 / deviation)`` of the rows ``rows``. The features
    are then only divided by the deviation, not centred (a centred sparse matrix is dense). The
    fitted model is the same: a logistic regression's intercept is not penalised, so a shift of
    the features is taken up by the intercept (:func:`_centred` moves it back)."""
    mean, var = _sparse_moments(m, np.asarray(rows))
    std = np.sqrt(var + 1e-6)
    return mean, std ** 2, 1.0 / std


def _scale_in_place(m):
    """The rows of ``m`` scaled as :func:`_sparse_scale` says, written over ``m``'s own values (in
    its dtype): ``(mean, variance)``."""
    mean, var, inverse = _sparse_scale(m, np.arange(m.shape[0]))
    for lo in range(0, m.nnz, 2**22):
        hi = min(m.nnz, lo + 2**22)
        m.data[lo:hi] = m.data[lo:hi].astype(np.float64) * inverse[m.indices[lo:hi]]
    return mean, var


def _centred(coef: np.ndarray, intercept: np.ndarray, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """The intercept of a model on ``x / std`` as one on ``(x - mean) / std``: the same logits."""
    return intercept + coef @ (mean / np.sqrt(var))


def _lr(C: float, class_weight, warm: bool = False, precise: bool = False, sparse: bool = False):
    """The cross-validation walk fits loosely (a choice of C needs no fourth decimal); the head
    that is delivered is fitted to scikit-learn's default precision. ``sparse``: on features that
    are not centred (:func:`_sparse_scale`), where lbfgs stops farther from the optimum at the
    same tolerance: a tolerance ten times finer (cheap on a sparse matrix), which lands nearer to
    it than the dense fit does."""
    from sklearn.linear_model import LogisticRegression

    tol = (1e-4 if precise else 1e-3) / (10 if sparse else 1)
    return LogisticRegression(C=C, max_iter=1000 if precise else 300, tol=tol,
                              class_weight=class_weight, warm_start=warm)


def _proba(clf, x, n_classes: int) -> np.ndarray:
    """Probabilities over all ``n_classes`` (a class absent from a fold gets 0)."""
    out = np.zeros((x.shape[0], n_classes))
    out[:, clf.classes_] = clf.predict_proba(x)
    return out


def linear_probe(x: np.ndarray, y: np.ndarray, folds: Sequence[tuple[np.ndarray, np.ndarray]], *,
                 metric: Callable, n_classes: int, class_weight: Mapping[int, float] | None = None,
                 Cs: Sequence[float] = C_GRID, se_fn: Callable | None = None) -> ProbeResult:
    """Score logistic regression on ``x`` for every ``C`` over ``folds``; keep the best ``C``.

    The score is the metric on the pooled out-of-fold predictions (all items with k-fold
    cross-validation, the validation items with one hold-out fold); ties on it go to the lower
    out-of-fold log-loss. (Choosing ``C`` by the log-loss alone was tried on Rotten Tomatoes at
    200 and 600 texts: a steadier choice, but not a better one on test.) ``se_fn(y_true, y_pred,
    index)`` gives the score's standard error.
    """
    t0 = time.perf_counter()
    y = np.asarray(y)
    cw = dict(class_weight) if class_weight else None
    eval_index = np.concatenate([va for _, va in folds])
    y_eval = y[eval_index]
    prepared = []
    x = as_rows(x)
    sparse = _mostly_zeros(x, folds[0][0])
    # the walk in float32 (scikit-learn's lbfgs keeps it): 2.5x faster at 2 000 x 1 280, the
    # same iterations and scores to the printed digit; the delivered head is fitted in float64
    # (in float32 on the sparse path, see fit_logistic)
    if sparse:  # TF-IDF: the rows read once, sparse; each fold's scaled copy made when it is fitted
        whole = _sparse_rows(x, np.arange(len(x)))  # (issue 35: five folds held were 550 MB)
        for tr, va in folds:
            inverse = _sparse_scale(whole, tr)[2]  # once a fold, not once a strength

            def scaled(tr=tr, va=va, inverse=inverse):
                return [_scaled_rows(whole, np.asarray(r), inverse, WALK_DTYPE) for r in (tr, va)]

            prepared.append((scaled, y[tr], _lr(Cs[0], cw, warm=True, sparse=True)))
    else:
        for tr, va in folds:
            standardised = _standardise(x, tr, va, dtype=WALK_DTYPE)[2]
            prepared.append((lambda ready=standardised: ready, y[tr], _lr(Cs[0], cw, warm=True)))
    probs, scores, logloss = {}, {}, {}
    worse = 0

    def fit_fold(fold, C):
        rows, ytr, clf = fold
        xtr, xva = rows()
        clf.set_params(C=C)
        clf.fit(xtr, ytr)
        return _proba(clf, xva, n_classes)

    with one_blas_thread(), concurrent.futures.ThreadPoolExecutor(min(len(prepared), os.cpu_count() or 1)) as pool, \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lbfgs at max_iter on a weak C: still usable
        for C in Cs:
            probs[C] = np.concatenate(list(pool.map(fit_fold, prepared, [C] * len(prepared))))
            scores[C] = float(metric(y_eval, probs[C].argmax(1)))
            # ties on the metric (frequent on small data): the better-calibrated probabilities, i.e.
            # the lower out-of-fold log-loss; a tiny C ties on accuracy with near-uniform probabilities
            logloss[C] = log_loss(y_eval, probs[C])
            best = max(scores, key=lambda c: (round(scores[c], 12), -logloss[c]))
            worse = 0 if C == best else worse + 1
            if worse >= 3:
                break
    best_C = best
    pred = probs[best_C].argmax(1)
    se = float(se_fn(y_eval, pred, eval_index)) if se_fn is not None else float("nan")
    return ProbeResult(score=scores[best_C], se=se, C=best_C, oof_probs=probs[best_C],
                       eval_index=eval_index, scores_by_C=scores, seconds=time.perf_counter() - t0,
                       dim=int(np.shape(x)[1]))


def log_loss(y: np.ndarray, probs: np.ndarray) -> float:
    """Mean negative log-probability of the true classes ``y`` under ``probs`` ``(n, classes)``."""
    from automl_tl.metrics import true_class_log_loss

    y = np.asarray(y, dtype=int)
    return true_class_log_loss(np.asarray(probs)[np.arange(len(y)), y])


def fit_logistic(x: np.ndarray, y: np.ndarray, C: float, n_classes: int,
                 class_weight: Mapping[int, float] | None = None, rows=None):
    """Logistic regression on standardised ``x``: ``(mean, variance, W (D, K), b (K,))`` such that
    ``softmax(((x - mean) / sqrt(variance)) @ W + b)`` are its probabilities over all classes.
    ``rows``: fit on ``x[rows]`` (``y`` are their labels) without a dense copy of them when the
    features are mostly zeros (TF-IDF). On that path the fit is in float32, the features' own
    dtype, so that the rows are held once: a float64 copy beside them was 160 MB at 100 000
    TF-IDF rows; on sparse features the two fits' probabilities differ by under 0.004 (measured
    at C 1e-4 to 1 on 20 000 x 3 000) and their labels agree on 99.98 %."""
    x = as_rows(x)
    sparse = _mostly_zeros(x, rows)
    if sparse:  # fitted in the features' float32, scaled in place: one copy of the rows (issue 35)
        xs = _sparse_rows(x, np.arange(len(x)) if rows is None else rows)
        mean, var = _scale_in_place(xs)
    else:
        mean, var, (xs,) = _standardise(x, rows)
    clf = _lr(C, dict(class_weight) if class_weight else None, precise=True, sparse=sparse)
    with warnings.catch_warnings(), one_blas_thread():
        warnings.simplefilter("ignore")
        clf.fit(xs, np.asarray(y))
    d = xs.shape[1]
    W = np.zeros((d, n_classes))
    b = np.full(n_classes, -30.0)  # a class absent from the training items: never predicted
    coef, intercept = clf.coef_, clf.intercept_
    if sparse:
        intercept = _centred(coef, intercept, mean, var)
    if len(clf.classes_) == 2 and coef.shape[0] == 1:  # binary: logits (0, z) give sigmoid(z)
        coef = np.vstack([np.zeros_like(coef[0]), coef[0]])
        intercept = np.array([0.0, intercept[0]])
    W[:, clf.classes_] = coef.T
    b[clf.classes_] = intercept
    return mean, var, W, b


def logistic_head(x: np.ndarray, y: np.ndarray, C: float, n_classes: int,
                  class_weight: Mapping[int, float] | None = None, name: str = "head", rows=None):
    """The fitted logistic regression as a Keras head: ``Normalization -> Dense(softmax)``;
    ``rows``: fitted on ``x[rows]`` (see :func:`fit_logistic`)."""
    import keras

    mean, var, W, b = fit_logistic(x, y, C, n_classes, class_weight, rows=rows)
    head = keras.Sequential([
        keras.Input((x.shape[1],), name="features"),
        keras.layers.Normalization(mean=mean, variance=var, name="feature_norm"),
        keras.layers.Dense(n_classes, activation="softmax", name="probabilities"),
    ], name=name)
    head.get_layer("probabilities").set_weights([W.astype("float32"), b.astype("float32")])
    return head


def option_grid(options: Mapping[str, Sequence], limit: int = 4) -> list[dict]:
    """Every combination of a backbone's searched options (the first is the default), at most
    ``limit``."""
    import itertools

    keys = list(options)
    combos = [dict(zip(keys, values)) for values in itertools.product(*(options[k] for k in keys))]
    return combos[:limit] or [{}]


def probe_sample(y: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Sorted positions of a class-stratified random sample of ``n`` of the items labelled ``y``
    (every class keeps its share, and at least one item)."""
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    quota = np.maximum(1, np.floor(counts * n / len(y)).astype(int))
    for k in np.argsort(-(counts * n / len(y) - quota))[:max(0, n - int(quota.sum()))]:
        quota[k] += 1  # the largest remainders get the items the flooring left over
    picked = [rng.choice(np.flatnonzero(y == c), min(q, cnt), replace=False)
              for c, q, cnt in zip(classes, quota, counts)]
    return np.sort(np.concatenate(picked))


def _all_readouts(ctx, spec, option_sets, log) -> None:
    """Every readout's features in one forward pass; if the backbone's ``readouts`` fails, each
    option set is computed alone when probed (and fails there on its own, if it must)."""
    from automl_tl.errors import AutoMLTLError, EmbeddingOverBudget

    try:
        ctx.features_many(spec.name, option_sets)
    except (AutoMLTLError, EmbeddingOverBudget):
        raise
    except Exception as exc:  # noqa: BLE001 - a plugin's readouts is an optimisation only
        if log is not None:
            log.warning("probe %s: readouts failed (%s: %s); computing each option alone", spec.name,
                        type(exc).__name__, str(exc)[:200])


def _proxies(ctx, backbone: str, options) -> dict:
    """The transferability proxies beside the probe, on the same cached features and folds; they
    are reported, not used for choosing, so a failure is recorded and nothing else."""
    from automl_tl.metrics import metric_function
    from automl_tl.transferability import proxy_scores

    try:
        return proxy_scores(ctx.features(backbone, options), ctx.y, ctx.plan.folds,
                            metric=metric_function(ctx.metric), n_classes=ctx.n_classes)
    except Exception as exc:  # noqa: BLE001
        return {"error": f"{type(exc).__name__}: {exc}"[:200]}


def _guard(budget: Budget):
    """The embedding cache's guard under ``budget``: stops a pass whose measured rate says it
    would end after the budget's time left (:class:`~automl_tl.errors.EmbeddingOverBudget`)."""
    from automl_tl.errors import EmbeddingOverBudget

    def guard(backbone: str, seconds_per_item: float, items_left: int) -> None:
        predicted, left = seconds_per_item * items_left, budget.left()
        if predicted > left:
            raise EmbeddingOverBudget(backbone, predicted, left)

    return guard


def probe_order(specs, evidence: Mapping[str, float] | None = None) -> list:
    """The order the probe embeds ``specs`` in: classical featurizers first (cheap, and they are
    the baseline), then the pretrained backbones by what past tasks say they are worth
    (``evidence``: :func:`automl_tl.knowledge.backbone_evidence`, the best first), then those no
    past task mentions, the smallest first. Under a tight time budget the first embedded are the
    ones kept: a 110 M encoder that won every past text task goes before a 22 M one, and the
    budget guard leaves out whatever comes after and would not fit."""
    evidence = evidence or {}

    def key(s):
        known = s.name in evidence and not s.classical
        return (not s.classical, not known, -evidence.get(s.name, 0.0) if known else 0.0, s.n_params, s.name)

    return sorted(specs, key=key)


def probe_candidates(ctx, specs, *, budget: Budget = NO_BUDGET, log=None,
                     max_items: int = PROBE_ITEMS, evidence: Mapping[str, float] | None = None) -> list[dict]:
    """The linear probe of every candidate backbone and option combination, best first.

    In :func:`probe_order` (``evidence``: what past tasks say each backbone is worth), every
    backbone's default options before any alternative, so a tight time budget still ranks every
    backbone it can hold. Once ``budget`` is past no new embedding is
    started, and an embedding pass (but the first) that its first batches show would end after
    the budget is stopped there (``predicted_s``: its predicted seconds); pairs left out are
    listed with ``"skipped"``. Data of more than
    ``max_items`` items are probed on a stratified sample of that many (rows say ``n_items``).
    """
    from automl_tl.errors import AutoMLTLError, EmbeddingOverBudget

    sampled = len(ctx.y) > max_items
    if sampled:
        ctx = ctx.subset(probe_sample(ctx.y, max_items, ctx.seed))

    order = probe_order(specs, evidence)
    if log is not None and evidence:
        log.info("probe order: %s (by past tasks' evidence, then the smallest first)", ", ".join(s.name for s in order))
    grids = {s.name: option_grid(s.options) for s in order}
    queue = [(s, grids[s.name][0]) for s in order]
    queue += [(s, o) for s in order for o in grids[s.name][1:]]
    rows = []
    over: dict[str, str] = {}  # backbone -> why its pass was stopped (its other readouts too)
    for i, (spec, options) in enumerate(queue):
        if spec.name in over:
            rows.append({"backbone": spec.name, "options": options, "skipped": over[spec.name]})
            continue
        if i and budget.past():
            rows.append({"backbone": spec.name, "options": options, "skipped": "the time budget for probing ran out"})
            continue
        t0 = time.perf_counter()
        cache = getattr(ctx, "cache", None)
        if cache is not None and i and budget.limited:
            cache.guard = _guard(budget)
        try:
            if spec.readouts is not None and len(grids[spec.name]) > 1 and options == grids[spec.name][0]:
                _all_readouts(ctx, spec, grids[spec.name], log)
            result = ctx.probe(spec.name, options)
        except AutoMLTLError:
            raise
        except EmbeddingOverBudget as exc:
            over[spec.name] = f"left out: {exc}"
            rows.append({"backbone": spec.name, "options": options, "skipped": over[spec.name],
                         "predicted_s": round(exc.predicted, 1)})
            if log is not None:
                log.info("probe %s %s left out: %s", spec.name, options or "", exc)
            continue
        except Exception as exc:  # noqa: BLE001 - one broken (backbone, options) pair is left out
            reason = f"failed: {type(exc).__name__}: {exc}"[:300]
            rows.append({"backbone": spec.name, "options": options, "skipped": reason})
            if log is not None:
                log.warning("probe %s %s %s", spec.name, options or "", reason)
            continue
        finally:
            if cache is not None:
                cache.guard = None
        rows.append({"backbone": spec.name, "options": options, "score": result.score, "se": result.se,
                     "C": result.C, "classical": spec.classical, "dim": int(result.dim),
                     "seconds": round(time.perf_counter() - t0, 2), "proxies": _proxies(ctx, spec.name, options)}
                    | ({"n_items": len(ctx.y)} if sampled else {}))
        if log is not None:
            log.info("probe %s %s: %.4f ± %.4f (logistic regression, C=%.3g%s)", spec.name,
                     options or "", result.score, result.se, result.C,
                     f", on a sample of {len(ctx.y)} items" if sampled else "")
    scored = sorted((r for r in rows if "score" in r), key=lambda r: (-r["score"], r["classical"]))
    return scored + [r for r in rows if "score" not in r]
