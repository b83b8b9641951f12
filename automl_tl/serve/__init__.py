"""``automl-tl serve``: a saved run behind an HTTP server (FastAPI + uvicorn, the ``serve``
extra). ``POST /predict`` answers labels and calibrated probabilities through the run's own
:class:`~automl_tl.artifacts.Predictor` (the path ``automl-tl predict`` takes), with concurrent
requests batched into one forward pass; ``GET /health``, ``GET /metadata``, ``/docs``.

Modules: ``_batcher`` (the asyncio queue and the model's thread), ``_requests`` (reading a
request within the limits), ``_metadata`` (what the run folder records), ``_settings`` (the options), ``_app`` (the FastAPI
app), ``_server`` (dependencies, the port, uvicorn, signals). FastAPI is imported only by
``_app`` and ``_requests``, so this package imports without the extra installed."""

from automl_tl.serve._batcher import Batcher
from automl_tl.serve._metadata import run_metadata
from automl_tl.serve._server import bind, build_server, require_serve, serve
from automl_tl.serve._settings import ServeSettings

__all__ = ["Batcher", "run_metadata", "bind", "build_server", "require_serve", "serve", "ServeSettings"]
