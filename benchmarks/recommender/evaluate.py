"""The recommender on a task suite: regret of the recommendation, with and without the prior,
and how well the transferability measures ranked the backbones.

    .venv/bin/python benchmarks/build_prior.py              # runs the suite's searches (~20 min)
    .venv/bin/python benchmarks/recommender/evaluate.py     # reads their records: seconds
    .venv/bin/python benchmarks/recommender/evaluate.py --records ~/.local/share/automl-tl/knowledge.jsonl

Input: knowledge-base records (default: the prior shipped in the package), one per task, each
holding the best score the search found for every strategy it ran. For each task:

* **table**: the strategy table's recommendation, scored as the search scored it (the recommended
  trial); regret = best found - that score;
* **prior, leave-one-task-out**: the strategy of the configuration the nearest *other* task's
  search selected (what the warm start enqueues first); its score here is the best this task's
  search found with that strategy (missing when the search never ran it);
* each measure's Kendall tau against the search's best score per backbone (none with fewer than
  three backbones).

Then: the share of tasks where each recommendation is within 1 point of the best, and which
strategy won at which size (the empirical strategy table).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from automl_tl.knowledge import nearest, prior_path, read_records  # noqa: E402

POINT = 0.01


def evaluate(records: list[dict]) -> dict:
    rows = []
    for rec in records:
        best = rec["best"]["score"]
        table = rec.get("recommended") or {}
        others = [r for r in records if r is not rec]
        near = nearest(rec["meta"], others, 1)
        prior = None
        if near:
            dist, other = near[0]
            # the warm start's pick: what that search selected (older records: its top score)
            strategy = (other.get("selected") or other["best"])["strategy"]
            got = (rec.get("by_strategy") or {}).get(strategy)
            prior = {"from": other.get("label"), "distance": round(dist, 2), "strategy": strategy,
                     "regret": None if got is None else round(best - got["score"], 4)}
        rows.append({"task": rec.get("label"), "modality": rec["meta"]["modality"], "n": rec["meta"]["n_samples"],
                     "per_class": rec["meta"]["median_per_class"], "size": rec["meta"].get("size_category"),
                     "best": {"strategy": rec["best"]["strategy"], "backbone": rec["best"]["backbone"], "score": best},
                     "scores": {s: v["score"] for s, v in (rec.get("by_strategy") or {}).items()},
                     "table": {"strategy": table.get("strategy"), "regret": table.get("regret")},
                     "prior": prior, "tau": rec.get("tau") or {}})

    def share(key):
        vals = [r[key]["regret"] for r in rows if r[key] and r[key].get("regret") is not None]
        return {"within_1_point": sum(v <= POINT + 1e-9 for v in vals), "of": len(vals)}

    taus: dict[str, list[float]] = {}
    for r in rows:
        for m, t in r["tau"].items():
            if t is not None:
                taus.setdefault(m, []).append(t)
    return {"tasks": rows, "table": share("table"), "prior": share("prior"),
            "tau": {m: {"mean": round(sum(v) / len(v), 3), "n_tasks": len(v)} for m, v in taus.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", default=str(prior_path()), help="a knowledge-base file (default: the shipped prior)")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    out = evaluate(read_records([Path(args.records)]))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    print("| task | items (per class) | best found | table: strategy, regret | prior (LOTO): from, strategy, regret | "
          "tau probe / LogME / kNN |")
    print("|---|---|---|---|---|---|")
    for r in out["tasks"]:
        p = r["prior"] or {}
        tau = " / ".join("-" if r["tau"].get(m) is None else f"{r['tau'][m]:+.2f}" for m in ("linear_probe", "logme", "knn"))
        print(f"| {r['task']} | {r['n']} ({r['per_class']:.0f}) | {r['best']['strategy']} / {r['best']['backbone']} "
              f"{r['best']['score']:.4f} | {r['table']['strategy']}, {r['table']['regret']} | "
              f"{p.get('from', '-')}, {p.get('strategy', '-')}, {p.get('regret', 'not run here')} | {tau} |")
    t, p = out["table"], out["prior"]
    print(f"\nwithin 1 point of the best found: table {t['within_1_point']}/{t['of']}, "
          f"prior (leave-one-task-out) {p['within_1_point']}/{p['of']}")
    print("mean Kendall tau over tasks with >= 3 backbones: "
          + (", ".join(f"{m} {v['mean']:+.2f} ({v['n_tasks']} tasks)" for m, v in out["tau"].items()) or "none"))
    print("\nstrategy that won, by size:")
    for r in sorted(out["tasks"], key=lambda r: (r["modality"], r["per_class"])):
        print(f"  {r['modality']:<6} {r['per_class']:>6.0f} per class ({r['size']}): {r['best']['strategy']} "
              + "(" + ", ".join(f"{s} {v:.3f}" for s, v in sorted(r["scores"].items(), key=lambda kv: -kv[1])) + ")")


if __name__ == "__main__":
    main()
