"""The FastAPI application: ``POST /predict``, ``GET /health``, ``GET /metadata`` and FastAPI's
own ``/docs``, around one loaded :class:`~automl_tl.artifacts.Predictor`."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import time
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from pydantic import BaseModel

from automl_tl._version import __version__
from automl_tl.errors import AutoMLTLError
from automl_tl.serve._batcher import Batcher
from automl_tl.serve._metadata import run_metadata
from automl_tl.serve._passes import forward_pass
from automl_tl.serve._requests import Inputs, Limits, read_inputs
from automl_tl.serve._settings import ServeSettings

__all__ = ["create_app"]


class Prediction(BaseModel):
    index: int
    input: str | None = None  # the file's name; None for a text
    label: str
    probability: float
    probabilities: dict[str, float]


class Predictions(BaseModel):
    classes: list[str]
    predictions: list[Prediction]


_BODY_DOC = {
    "requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": {"type": "object", "properties": {
            "files": {"type": "array", "items": {"type": "string", "format": "binary"}}}}},
        "application/json": {"schema": {"type": "object", "properties": {
            "texts": {"type": "array", "items": {"type": "string"}}}}},
    }},
    "responses": {str(code): {"description": why} for code, why in (
        (400, "a body that is not valid JSON or multipart"), (413, "over --max-body-mb or --max-items"),
        (415, "the wrong kind of body for this model (files for a text model, texts for the others)"),
        (422, "no inputs, or inputs the model cannot use (each named with the reason)"))},
}


def _unusable(inputs: Inputs, keep: list, skips: list) -> HTTPException:
    """422 naming each input the modality's check left out, by its file name or position."""
    kept = set(keep)
    dropped = [i for i in range(len(inputs.items)) if i not in kept]
    reasons = [s.reason for s in skips] if len(skips) == len(dropped) else ["unusable input"] * len(dropped)
    named = [f"{inputs.names[i] or f'input {i}'}: {r}" for i, r in zip(dropped, reasons)]
    return HTTPException(422, f"{len(dropped)} of {len(inputs.items)} inputs cannot be used: "
                              f"{'; '.join(named[:10])}{' ...' if len(named) > 10 else ''}")


def create_app(predictor, settings: ServeSettings = ServeSettings()) -> FastAPI:
    """The app serving ``predictor`` (loaded once, before): each request's inputs are checked as
    ``automl-tl predict`` checks them, then wait up to ``batch_window_ms`` for others to share
    one ``predictor.predict_proba`` pass of at most ``max_batch`` inputs."""
    batcher = Batcher(forward_pass(predictor, settings.max_batch),
                      window_s=settings.batch_window_ms / 1000, max_batch=settings.max_batch)
    limits = Limits(max_body=int(settings.max_body_mb * 2 ** 20), max_items=settings.max_items)
    metadata = run_metadata(predictor) | {"server": {
        "batch_window_ms": settings.batch_window_ms, "max_batch": settings.max_batch,
        "max_items": settings.max_items, "max_body_mb": settings.max_body_mb}}
    started = time.time()

    @contextlib.asynccontextmanager
    async def lifespan(app):
        with tempfile.TemporaryDirectory(prefix="automl-tl-serve.") as scratch:
            app.state.scratch = Path(scratch)
            batcher.start()
            try:
                yield
            finally:
                await batcher.stop()

    app = FastAPI(title="automl-tl", version=__version__, lifespan=lifespan,
                  description=f"Predictions of the model in {predictor.run_dir} "
                              f"({metadata['backbone']}, {len(predictor.labels)} classes).")

    @app.get("/health", summary="the server is up; what it has done so far")
    async def health() -> dict:
        return {"status": "ok", "uptime_s": round(time.time() - started, 1), "stats": dict(batcher.stats)}

    @app.get("/metadata", summary="the model: classes, backbone, strategy, metric, estimate on new data")
    async def get_metadata() -> dict:
        return metadata

    @app.post("/predict", response_model=Predictions, openapi_extra=_BODY_DOC,
              summary="labels and calibrated probabilities, one per input",
              description="Images or audio clips as files (multipart/form-data, any field name), or texts as "
                          'JSON {"texts": [...]}, whichever the model takes (GET /metadata says).')
    async def predict(request: Request) -> Predictions:
        inputs = await read_inputs(request, modality=predictor.modality, limits=limits, scratch=app.state.scratch)
        try:
            keep, usable, skips = await asyncio.to_thread(predictor.check_inputs, inputs.items)
            if skips:
                raise _unusable(inputs, keep, skips)
            try:
                proba = await batcher.submit(usable)
            except AutoMLTLError as exc:  # an input that passed the check but not the reader
                raise HTTPException(422, str(exc)) from None
        finally:
            if inputs.folder is not None:
                shutil.rmtree(inputs.folder, ignore_errors=True)
        labels = predictor.labels
        return Predictions(classes=labels, predictions=[
            Prediction(index=i, input=inputs.names[i], label=labels[int(p.argmax())], probability=float(p.max()),
                       probabilities={c: float(v) for c, v in zip(labels, p)})
            for i, p in enumerate(proba)])

    return app
