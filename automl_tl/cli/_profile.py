"""``automl-tl profile`` and ``automl-tl recommend``: the data's profile and the strategies
recommended for it, without a search."""

from __future__ import annotations

import json

from automl_tl.cli._common import EXIT_OK, _add_data_options, _estimator


def add_parsers(sub) -> None:
    """The ``profile`` and ``recommend`` commands."""
    p = sub.add_parser("profile", help="profile a dataset and recommend a strategy (seconds)",
                       description="Profile a dataset (size, classes, balance, input statistics, "
                                   "similarity to each backbone's pretraining data) and print the "
                                   "recommended strategy with its reason.")
    _add_data_options(p)
    p.add_argument("--json", action="store_true", help="print the profile as JSON")

    p = sub.add_parser("recommend", help="ranked strategy recommendations with their evidence (seconds)",
                       description="Profile a dataset, rank the candidate backbones by what their frozen "
                                   "features do on it (a cross-validated linear probe, with LogME and kNN "
                                   "beside it), and print, best first, the strategy the strategy table gives "
                                   "each and its first configuration, with the evidence: the table's rule, "
                                   "the probe, each backbone's rank under every measure, the similarity. "
                                   "No search is run; `automl-tl fit` starts from the first recommendation.")
    _add_data_options(p)
    p.add_argument("--top", type=int, default=3, metavar="N", help="how many backbones to recommend (default 3)")
    p.add_argument("--json", action="store_true", help="print JSON")


def _print_profile(prof, rec, left_out) -> None:
    print(f"data:        {prof.source}")
    print(f"modality:    {prof.modality}")
    print(f"samples:     {prof.n_samples} in {prof.n_classes} classes "
          f"(median {prof.median_per_class:.0f} per class: {prof.size_category})")
    counts = ", ".join(f"{k}={v}" for k, v in list(prof.class_counts.items())[:12])
    print(f"classes:     {counts}{' ...' if len(prof.class_counts) > 12 else ''}")
    print(f"balance:     largest/smallest class = {prof.imbalance_ratio:.2f}"
          f"{' (imbalanced: class weights will be used)' if prof.imbalanced else ''}")
    skipped = prof.skipped.get("count", 0)
    if skipped:
        print(f"skipped:     {skipped} inputs: {prof.skipped['by_reason']}")
        for ex in prof.skipped.get("examples", [])[:5]:
            print(f"             - {ex['item']}: {ex['reason']}")
    for name, info in prof.backbones.items():
        if info.get("similarity") is None:
            print(f"backbone:    {name:<22} classical featurizer (nothing pretrained); input {info['input_config']}")
            continue
        mark = "similar" if info["similar"] else "different"
        print(f"backbone:    {name:<22} similarity {info['similarity']:.2f} ({mark}); "
              f"input {info['input_config']}")
    if left_out:  # said once already, when the backbones were left out
        print(f"left out:    {', '.join(x['backbone'] for x in left_out)} (no weights here; see above)")
    for p in prof.probe:
        opts = ", ".join(f"{k}={v}" for k, v in p["options"].items())
        what = f"{p['backbone']}" + (f" ({opts})" if opts else "")
        if "score" in p:
            print(f"probe:       {what:<36} {p['score']:.3f} ± {p['se']:.3f}  (logistic regression on "
                  f"frozen features, C={p['C']:.3g})")
        else:
            print(f"probe:       {what:<36} not probed: {p['skipped']}")
    print(f"\nrecommended: {rec.strategy} with {rec.backbone} (rule '{rec.rule}')")
    print(f"why:         {rec.reason}")


def cmd_profile(args) -> int:
    prof, rec, data, (specs, weights, left_out) = _estimator(args, progress=True).profile(args.data)
    if args.json:
        print(json.dumps({"profile": prof.to_dict(), "recommendation": rec.to_dict(),
                          "left_out": left_out}, indent=2))
    else:
        _print_profile(prof, rec, left_out)
    return EXIT_OK


def cmd_recommend(args) -> int:
    from automl_tl.errors import ConfigError

    if args.top < 1:
        raise ConfigError(f"--top must be at least 1, not {args.top}")
    out = _estimator(args, progress=True).recommend(args.data, top=args.top)
    if args.json:
        print(json.dumps(out, indent=2, default=str))
        return EXIT_OK
    prof = out["profile"]
    print(f"data:      {prof['source']} ({prof['modality']}, {prof['n_samples']} samples, {prof['n_classes']} classes, "
          f"median {prof['median_per_class']:.0f} per class: {prof['size_category']})")
    if not out["recommendations"]:
        print("no pretrained backbone could be ranked here (see `automl-tl backbones`)")
    for r in out["recommendations"]:
        ev = r["evidence"]
        params = ", ".join(f"{k}={v}" for k, v in r["config"].items() if k not in ("backbone", "strategy"))
        print(f"\n{r['rank']}. {r['strategy']} with {r['backbone']}  (rule '{r['rule']}')")
        print(f"   first configuration: {params or 'defaults'}")
        probe = ev["probe"]
        proxies = ", ".join(f"{k} {v:.3f}" for k, v in ev["proxies"].items())
        ranks = ", ".join(f"{k.replace('_', ' ')} #{v}" for k, v in ev["ranks"].items() if v)
        print(f"   linear probe {out['metric']} {probe['score']:.3f} ± {probe['se']:.3f}"
              + (f"; {proxies}" if proxies else "") + f"; ranks: {ranks}")
        cost = ev.get("seconds")
        if cost:
            print(f"   predicted cost: embedding all {prof['n_samples']} items ~{cost['embed_all']:.0f} s, a fine-tuning "
                  f"epoch ~{cost['fine_tune_epoch']:.0f} s (measured {1000 * cost['per_item']:.1f} ms an item)")
        if ev["similarity"] is not None:
            print(f"   similarity to its pretraining data {ev['similarity']:.2f} "
                  f"({'similar' if ev['similar'] else 'different'})")
        print(f"   why: {r['reason']}")
    if out["nearest_tasks"]:
        print("\nnearest past tasks (knowledge base):")
        for t in out["nearest_tasks"]:
            rec = t.get("recommended") or {}
            regret = f"; the table's choice was {rec['regret']:.3f} below it" if rec.get("regret") is not None else ""
            best, sel = t["best"], t.get("selected")
            won = f"won by {best['strategy']} with {best['backbone']} ({best['score']:.3f})"
            if sel and (sel["strategy"], sel["backbone"]) != (best["strategy"], best["backbone"]):
                won = (f"its search selected {sel['strategy']} with {sel['backbone']} ({sel['score']:.3f}; "
                       f"top score {best['strategy']} with {best['backbone']}, {best['score']:.3f})")
            print(f"   {t['label']:<28} distance {t['distance']:.2f}: {t['meta'].get('n_samples')} samples, "
                  f"{t['meta'].get('n_classes')} classes; {won}{regret}")
    if out["baseline"]:
        b = out["baseline"]
        print(f"\nclassical baseline: {b['name']} {b['score']:.3f} ± {b['score_se']:.3f} (the line to beat)")
    print(f"\nrecommended in {out['seconds']:.1f} s; `automl-tl fit` searches from recommendation 1")
    return EXIT_OK


COMMANDS = {"profile": cmd_profile, "recommend": cmd_recommend}
