"""Everything a fit does before its search, and what ``recommend`` shows without one: the data
loaded and grouped, the candidate backbones (those whose weights are here), the profile, the
folds, the linear probe of each candidate's frozen features, and the strategy table's
recommendation, gathered in one :class:`_Prepared`.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from automl_tl import presets
from automl_tl.budget import NO_BUDGET, Budget
from automl_tl.errors import BackboneLeftOutWarning, ConfigError, WeightsUnavailableError

log = logging.getLogger("automl_tl")


def _left_out(msg: str) -> None:
    """Say a backbone was left out once: as a warning a caller may filter, and in the log where
    logging is set up (the CLI, which filters the warning); without a handler Python's last resort
    printed the log record as well, the same line twice."""
    warnings.warn(msg, BackboneLeftOutWarning, stacklevel=3)
    if log.hasHandlers():
        log.warning(msg)


def select_backbones(pm, modality: str, names: Sequence[str] | None = None,
                     overrides: Mapping[str, str] | None = None, *, opt_in: bool = False,
                     slow: bool = False):
    """Candidate backbones whose weights can be had here: ``(specs, weights, left_out)``.

    Named backbones are the candidates; otherwise every backbone of the modality but the opt-in
    ones (``BackboneSpec.opt_in``) unless ``opt_in``, and the slow ones (``BackboneSpec.slow``)
    unless ``slow`` (a time budget, or ``--preset best``).

    A backbone without obtainable weights is left out with a warning that says how to provide
    them; if none is left, :class:`WeightsUnavailableError`.
    """
    overrides = dict(overrides or {})
    if names:
        specs = [pm.backbones.get(n) for n in names]
        wrong = [s.name for s in specs if s.modality != modality]
        if wrong:
            raise ConfigError(f"backbone(s) {', '.join(wrong)} are not for {modality} data; run "
                              f"`automl-tl backbones --modality {modality}` to list those that are.")
    else:  # the defaults: every backbone of the modality, the opt-in and slow ones if asked
        specs = [s for s in pm.backbones.list(modality=modality) if opt_in or not s.opt_in]
        waiting = [s.name for s in specs if s.slow and not (slow or opt_in)]
        if waiting:
            log.info("slow backbone(s) %s not searched without a time budget (give --time-budget, "
                     "or name them with --backbones)", ", ".join(waiting))
        specs = [s for s in specs if s.name not in waiting]
    for name in overrides:
        pm.backbones.get(name)  # unknown names in --weights fail clearly
    kept, weights, left_out = [], {}, []
    for spec in specs:
        try:
            weights[spec.name] = spec.resolve_weights(overrides)
            kept.append(spec)
        except WeightsUnavailableError as exc:
            left_out.append({"backbone": spec.name, "reason": str(exc)})
            if names:  # asked for by name: each one is said, with how to provide its weights
                _left_out(f"backbone {spec.name!r} left out: {exc}")
    if left_out and not names:
        # the default candidates: offline, most have no weights here; one line says which (each
        # reason is in summary.json's "left_out" and in `automl-tl backbones`)
        from automl_tl.data import listed

        msg = (f"{len(left_out)} {modality} backbone(s) left out, no pretrained weights here: "
               f"{listed([x['backbone'] for x in left_out])} (give them with --weights NAME=PATH or "
               f"$AUTOML_TL_WEIGHTS_DIR, or connect to the network; `automl-tl backbones` says where "
               f"each one comes from)")
        _left_out(msg)
    if not kept:
        raise WeightsUnavailableError(
            f"no {modality} backbone has pretrained weights available here. "
            + " ".join(x["reason"] for x in left_out))
    return kept, weights, left_out


def _preset_candidates(est, specs: list) -> list:
    """The candidates of ``specs`` that the estimator's preset keeps (:func:`presets.candidates`),
    with one line naming those it leaves out."""
    chosen = presets.settings(est)
    kept = presets.candidates(specs, chosen.pretrained)
    dropped = [s.name for s in specs if s not in kept]
    if dropped:
        log.info("preset %s: candidates %s (%s left out: the preset keeps the %d smallest pretrained "
                 "backbones; --backbones or --preset best for all)", chosen.preset,
                 ", ".join(s.name for s in kept), ", ".join(dropped), chosen.pretrained)
    return kept


@dataclass(frozen=True, kw_only=True)
class _Prepared:
    data: Any
    profile: Any
    recommendation: Any
    rec_options: dict
    specs: list
    weights: dict
    left_out: list
    ctx: Any
    probes: list
    modality: Any
    labels: list
    timings: dict  # seconds per step before the search: load, profile, probe
    groups: dict = field(default_factory=dict)  # how validation is grouped (automl_tl.grouping)


class _Clock:
    """Seconds between laps, by name (what a run spent where: summary.json ``timings``)."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(now - self._t, 2)
        self._t = now


def prepare(est, X, y=None, *, budget: Budget = NO_BUDGET, on_data=None) -> _Prepared:
    """Everything before the search: data, profile, folds, the probe, the recommendation, with
    the settings of ``est`` (an :class:`~automl_tl.estimator.AutoTransfer`).

    ``budget``: the probe starts no new embedding once it is past.
    ``on_data(data)`` is called once the data are loaded, before anything costly.
    """
    from dataclasses import replace

    import automl_tl.data, automl_tl.probe, automl_tl.training  # noqa: F401,E401 - before the clock starts
    from automl_tl.cache import EmbeddingCache
    from automl_tl.compilation import enable_persistent_compilation_cache
    from automl_tl import grouping
    from automl_tl.profile import profile_data

    if not 0 < est.val_fraction < 1:
        raise ConfigError(f"val_fraction must be between 0 and 1, not {est.val_fraction}")
    pm = est._pm()
    clock = _Clock()
    data = est._load(X, y)
    if on_data is not None:
        on_data(data)
    # validate the way the model will be used: on new sources when the items come from a few
    data, groups = grouping.resolve(data, detect=est.detect_groups, column=est.group_column)
    clock.lap("load")
    chosen = presets.settings(est)
    specs, weights, left_out = select_backbones(pm, data.modality, est.backbones, est.weights,
                                                opt_in=chosen.opt_in, slow=chosen.slow)
    specs = _preset_candidates(est, specs)
    cache = EmbeddingCache(est.cache_dir)
    enable_persistent_compilation_cache(cache.root / "jax")  # JAX only: compiled programs kept for the next fit
    weights = dict(weights) | fit_featurizers(specs, data, cache.root)
    modality = pm.modalities.get(data.modality)
    prof = profile_data(data, modality=modality, table=pm.strategy_table, candidates=specs,
                        weights=weights, progress=est.progress)
    clock.lap("profile")
    labels = data.classes
    ctx, y_int = _trial_context(est, pm, data, prof, specs, weights, modality, cache)
    ctx, probes, groups = _probe(est, ctx, specs, groups, y_int, budget)
    data = ctx.data
    clock.lap("probe")
    backbones = {name: dict(info) | {"probe": next((p for p in probes if p["backbone"] == name
                                                    and "score" in p), None)}
                 for name, info in prof.backbones.items()}
    prof = replace(prof, backbones=backbones, probe=tuple(probes))
    spec = pm.backbones.get(prof.best_backbone() or specs[0].name)
    rec, rec_options = _recommendation_for(pm, prof, spec)
    rec = replace(rec, reason=f"{rec.reason} {_probe_evidence(probes, spec.name)}".strip())
    return _Prepared(data=data, profile=prof, recommendation=rec, rec_options=rec_options,
                     specs=specs, weights=weights, left_out=left_out, ctx=ctx, probes=probes,
                     modality=modality, labels=labels, timings=clock.laps, groups=groups)


def _trial_context(est, pm, data, prof, specs, weights, modality, cache):
    """What every trial of ``data`` shares (the folds, the integer labels, the class weights of
    imbalanced data, each candidate's input configuration): ``(ctx, y_int)``."""
    from automl_tl.accelerator import requested_batch, resolve_precision
    from automl_tl.data import evaluation_plan
    from automl_tl.training import TrialContext

    labels = data.classes
    index = {c: i for i, c in enumerate(labels)}
    y_int = np.array([index[c] for c in data.labels], dtype=np.int64)
    plan = evaluation_plan(data, y_int, val_fraction=est.val_fraction, seed=est.seed)
    class_weight = None
    if prof.imbalanced:
        counts = np.bincount(y_int, minlength=len(labels)).astype(float)
        class_weight = {i: float(len(y_int) / (len(labels) * max(c, 1))) for i, c in enumerate(counts)}
    input_configs = {s.name: dict(prof.backbones[s.name]["input_config"]) for s in specs}
    ctx = TrialContext(data=data, plan=plan, y=y_int, n_classes=len(labels),
                       input_configs=input_configs, weights=weights, specs={s.name: s for s in specs},
                       modality=modality, cache=cache, metric=est.metric, class_weight=class_weight,
                       seed=est.seed, batch_size=requested_batch(est.batch_size), progress=est.progress,
                       precision=resolve_precision(getattr(est, "precision", "auto")),
                       strategies=pm.strategies.as_dict())
    return ctx, y_int


def _probe(est, ctx, specs, groups: dict, y_int, budget: Budget):
    """The linear probe of every candidate, on folds grouped by the sources found; when none were
    found, by the clusters of near-duplicates in the best frozen features (the probe again on
    the folds that keep each whole): ``(ctx, probes, groups)``, ``ctx.data`` the data grouped."""
    from dataclasses import replace

    from automl_tl import grouping
    from automl_tl.data import evaluation_plan
    from automl_tl.probe import probe_candidates

    data = ctx.data
    evidence = _evidence(est, ctx)
    probes = probe_candidates(ctx, specs, budget=budget, log=log, evidence=evidence)
    if not groups["used"] and est.detect_groups and data.groups is None and data.split is None \
            and not groups.get("confounded"):
        # the last resort: near-duplicates in the best frozen features; the probe again on
        # folds that keep each cluster whole (the features are cached: a logistic regression each)
        found = grouping.clusters(ctx, probes)
        if found is None:
            groups["reason"] += ", and the frozen features hold no tight clusters of near-duplicates"
        else:
            data, groups = grouping.resolve(replace(data, found=found), detect=True)
            plan = evaluation_plan(data, y_int, val_fraction=est.val_fraction, seed=est.seed)
            ctx = replace(ctx, data=data, plan=plan, probes={})
            probes = probe_candidates(ctx, specs, budget=budget, log=log, evidence=evidence)
    groups = grouping.compare(ctx, probes, groups, seed=est.seed, val_fraction=est.val_fraction)
    return ctx, probes, groups


def _evidence(est, ctx) -> dict[str, float]:
    """What past tasks of the modality say each backbone is worth (the probe's order under a time
    budget): read from the knowledge base as the warm start reads it, and not at all when the warm
    start is off; a record of this very data is not evidence about it."""
    from automl_tl.knowledge import backbone_evidence, read_records, warm_start_enabled

    if not warm_start_enabled(est.warm_start):
        return {}
    return backbone_evidence(ctx.data.modality, read_records(), exclude_fingerprint=ctx.data.fingerprint())


def ranked_recommendations(pm, prep: _Prepared, top: int) -> list[dict]:
    """For each of the ``top`` pretrained backbones (ranked by the linear probe of their frozen
    features), the strategy the table gives it and its first configuration, with the evidence
    (the table's rule and reason, the probe, the transferability proxies and each backbone's rank
    under them, the similarity)."""
    from automl_tl.costs import CostModel
    from automl_tl.transferability import PROXIES

    prof = prep.profile
    scored = [p for p in prep.probes if "score" in p]
    best: dict[str, dict] = {}
    for p in scored:  # probes are best first: the first row of a backbone is its best readout
        best.setdefault(p["backbone"], p)
    pretrained = [b for b in best if not best[b]["classical"]]
    ranks = {"linear_probe": {b: i + 1 for i, b in enumerate(pretrained)}}
    for proxy in PROXIES:
        values = {b: max(float((p.get("proxies") or {}).get(proxy, -np.inf)) for p in scored if p["backbone"] == b)
                  for b in pretrained}
        order = sorted((b for b in values if np.isfinite(values[b])), key=lambda b: -values[b])
        ranks[proxy] = {b: i + 1 for i, b in enumerate(order)}
    ctx = prep.ctx
    costs = CostModel(seconds_per_item=ctx.cache.seconds_per_item, n_train=len(ctx.plan.train),
                      n_val=len(ctx.plan.val), n_all=len(ctx.y), k_folds=ctx.plan.k)
    out = []
    for name in pretrained[:max(1, int(top))]:
        rec, _ = _recommendation_for(pm, prof, pm.backbones.get(name))  # what fit would enqueue
        info = prof.backbones.get(name, {})
        out.append({
            "rank": len(out) + 1, "backbone": name, "strategy": rec.strategy, "rule": rec.rule,
            "config": {"backbone": name, "strategy": rec.strategy} | dict(rec.params),
            "reason": rec.reason,
            "evidence": {"probe": {k: best[name].get(k) for k in ("score", "se", "C", "options")},
                         "proxies": {k: v for k, v in (best[name].get("proxies") or {}).items() if k in PROXIES},
                         "ranks": {m: r.get(name) for m, r in ranks.items()},
                         "similarity": info.get("similarity"), "similar": info.get("similar"),
                         # predicted from the probe's measured forward pass (issue 32)
                         "seconds": costs.costs_of(name)}})
    return out


def left_out_of(prep: _Prepared) -> list:
    return list(prep.left_out) + [{"backbone": p["backbone"], "options": p["options"], "reason": p["skipped"]}
                                  for p in prep.probes if "skipped" in p]


def fit_featurizers(specs, data, cache_root) -> dict:
    """Weights learned from the inputs themselves (no labels), e.g. a TF-IDF vocabulary: fitted
    once per dataset into the cache folder."""
    from automl_tl.weights import ResolvedWeights

    out = {}
    for spec in specs:
        if spec.fit_weights is None:
            continue
        folder = Path(cache_root) / "fitted" / f"{spec.name}-{data.fingerprint()}"
        if not (folder / ".done").exists():
            tmp = folder.with_name(f"{folder.name}.{os.getpid()}.tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            spec.fit_weights(list(data.items), str(tmp))
            (tmp / ".done").write_text("ok")
            shutil.rmtree(folder, ignore_errors=True)
            os.replace(tmp, folder)
        out[spec.name] = ResolvedWeights(backbone=spec.name, kind="fitted", location=str(folder))
    return out


def search_space(prep: "_Prepared", strategies) -> "SearchSpace":
    """The space a search of ``prep`` explores: every candidate, with fine-tuning for the two
    pretrained backbones the probe ranked best."""
    from automl_tl.search import SearchSpace

    ctx = prep.ctx
    augmentable = {s.name: prep.modality.augmentation(ctx.input_configs[s.name]) is not None for s in prep.specs}
    ranked = [p["backbone"] for p in prep.probes if "score" in p and not p["classical"]]
    tunable = [b for b in dict.fromkeys(ranked) if ctx.specs[b].fine_tunable][:2]
    return SearchSpace(specs=ctx.specs, augmentable=augmentable, strategies=strategies,
                       fine_tune_backbones=tuple(tunable) or None)


def _recommendation_for(pm, prof, spec):
    """The strategy table's recommendation for backbone ``spec`` on this profile, with its first
    readout options (also in its params): ``(rec, options)``."""
    from dataclasses import replace

    rec = pm.strategy_table.recommend(prof, backbone=spec.name, fine_tunable=spec.fine_tunable)
    top = prof.best_probe(spec.name)
    options = dict(top["options"]) if top else {}
    strategy = pm.strategies.as_dict().get(rec.strategy)
    if strategy is not None and strategy.fine_tunes:
        # the probe ranks frozen readouts; fine-tuning adapts the encoder under the readout
        # it was pretrained with (the first option). bench_vs_linear_probe, Rotten Tomatoes
        # 2 000 texts: LP-FT trials with mean pooling scored 0.805 / 0.8075 on the hold-out;
        # with the probe's best readout (the last three layers' means) all four stayed at
        # their head start, 0.785
        options = {k: v[0] for k, v in spec.options.items()}
    return replace(rec, params=dict(rec.params) | options), options


def _probe_evidence(probes, best: str) -> str:
    scored = [p for p in probes if "score" in p]
    if not scored:
        return ""
    top = next((p for p in scored if p["backbone"] == best), None)
    parts = [f"{p['backbone']}{_opts(p['options'])} {p['score']:.3f}±{p['se']:.3f}" for p in scored[:5]]
    text = f"Linear probe (logistic regression on frozen features): {', '.join(parts)}."
    if top is not None:
        text += f" {best} ranks best among the pretrained backbones."
    classical = [p for p in scored if p["classical"]]
    if classical and top is not None and classical[0]["score"] > top["score"] + top["se"]:
        text += (f" The classical baseline {classical[0]['backbone']} scores higher on this data; it "
                 f"is searched too and delivered if it stays ahead.")
    return text


def _opts(options) -> str:
    return f" ({', '.join(f'{k}={v}' for k, v in options.items())})" if options else ""


def _baseline(probes, metric: str) -> dict | None:
    """The run's classical baseline: the best classical featurizer's linear probe."""
    classical = [p for p in probes if "score" in p and p.get("classical")]
    if not classical:
        return None
    p = classical[0]
    return {"name": f"{p['backbone']}{_opts(p['options'])} + logistic regression", "score": p["score"],
            "score_se": p["se"], "metric": metric, "seconds": p["seconds"], "backbone": p["backbone"]}
