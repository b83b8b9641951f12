"""The argument parser of ``automl-tl``: the top-level options, then each command's own
subparser, added by the module of that command."""

from __future__ import annotations

import argparse

from automl_tl._version import __version__
from automl_tl.cli import _demo, _export, _fit, _lists, _predict, _profile, _reports, _serve

DESCRIPTION = """\
automl-tl: transfer learning on autopilot.

Hand it a labelled dataset (a folder with one sub-folder per class, or a table of
path/text + label) and it profiles the data, recommends a strategy from the strategy table
(feature extraction / fine-tune the top blocks / LP-FT ...; `automl-tl strategies` lists them),
searches backbones, strategies and hyperparameters with Optuna starting from that recommendation, and delivers a tuned Keras model,
a leaderboard and a report.

typical use:
  automl-tl profile ./flowers
  automl-tl fit ./flowers --trials 30          # or --time-budget 20m; run again to resume
  automl-tl fit ./flowers --preset fast        # or balanced (default), best
  automl-tl predict runs/flowers img1.jpg img2.png
  automl-tl evaluate runs/flowers ./test-photos
  automl-tl export runs/flowers --format onnx  # or tflite, saved_model
  automl-tl serve runs/flowers --port 8000     # POST /predict, GET /metadata
  automl-tl report runs/flowers
"""


#: the modules of the commands, in the order ``automl-tl --help`` lists their commands
COMMAND_MODULES = (_profile, _fit, _predict, _lists, _reports, _demo, _serve, _export)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="automl-tl", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"automl-tl {__version__}")
    parser.add_argument("--debug", action="store_true", help="print full tracebacks on errors")
    parser.add_argument("--log-level", type=str.upper, default="INFO",
                        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                        help="what the library's logger (automl_tl) prints: DEBUG adds each step's "
                             "details, WARNING keeps problems only (default INFO)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.add_parsers(sub)
    return parser
