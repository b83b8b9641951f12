"""The package's version, in one place: ``automl_tl.__version__``, ``automl-tl --version`` and each
run's summary.json read it from here (pyproject.toml's ``version`` must say the same)."""

__version__ = "0.1.0"
