"""What a ``POST /predict`` body holds, read within the server's limits: the files of a
multipart form (images, audio clips), written to a folder of their own for the modality's
reader, or the texts of a JSON body. Every problem is an HTTP 4xx with the reason."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

from fastapi import HTTPException, Request
from starlette.datastructures import UploadFile

__all__ = ["Limits", "read_inputs", "Inputs"]


@dataclass(frozen=True, kw_only=True)
class Limits:
    max_body: int  # bytes
    max_items: int


@dataclass(frozen=True, kw_only=True)
class Inputs:
    """The inputs of one request, what each is shown as (a file's name) and the folder its
    files were written to (None for texts): the caller removes it once answered."""

    items: list
    names: list
    folder: Path | None = None


def _too_large(limits: Limits, what: str = "the request body") -> HTTPException:
    return HTTPException(413, f"{what} is over the server's limit of {limits.max_body / 2 ** 20:g} MB "
                              f"(--max-body-mb): send fewer or smaller inputs per request.")


#: how much of an oversized body is still read (and dropped) before the 413: a client that sends
#: its whole body before it reads the answer (urllib, requests) gets the 413, not a reset
#: connection; a body larger still is answered at once (curl's Expect: 100-continue sends none)
DRAIN_BYTES = 16 * 2 ** 20


async def _body(request: Request, limits: Limits) -> bytes:
    """The body, refused (413) once it passes the limit, from its declared length or as it
    streams in."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limits.max_body + DRAIN_BYTES:
        raise _too_large(limits)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limits.max_body + DRAIN_BYTES:
            break
        if size <= limits.max_body:
            chunks.append(chunk)
    if size > limits.max_body:
        raise _too_large(limits)
    return b"".join(chunks)


def _count(n: int, limits: Limits) -> None:
    if n == 0:
        raise HTTPException(422, "no inputs: send at least one.")
    if n > limits.max_items:
        raise HTTPException(413, f"{n} inputs in one request: the server takes at most {limits.max_items} "
                                 f"(--max-items); split them over several requests.")


def _texts(body: bytes, limits: Limits) -> Inputs:
    try:
        data = json.loads(body)
    except ValueError as exc:  # UnicodeDecodeError is one
        raise HTTPException(400, f"the body is not valid JSON ({exc}).") from None
    keys = [k for k in ("texts", "inputs") if isinstance(data, dict) and k in data]
    if len(keys) != 1:
        raise HTTPException(422, 'send a JSON object with one list of texts: {"texts": ["...", ...]} '
                                 '(or "inputs" for the same).')
    texts = data[keys[0]]
    if not isinstance(texts, list):
        raise HTTPException(422, f'"{keys[0]}" must be a list of texts, not a {type(texts).__name__}.')
    _count(len(texts), limits)
    return Inputs(items=texts, names=[None] * len(texts))


#: a file name's suffix kept on the written copy (readers may go by it); anything else is dropped
_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,8}$")


async def _files(request: Request, body: bytes, limits: Limits, folder: Path) -> Inputs:
    async def replay():  # the body already read, handed to Starlette's multipart parser
        return {"type": "http.request", "body": body, "more_body": False}

    # one more than allowed of each, so that too many are counted and answered below
    form = await Request(request.scope, replay).form(max_files=limits.max_items + 1,
                                                       max_fields=limits.max_items + 1)
    try:
        uploads = [v for _, v in form.multi_items() if isinstance(v, UploadFile)]
        fields = [k for k, v in form.multi_items() if not isinstance(v, UploadFile)]
        if not uploads and fields:
            raise HTTPException(422, f"the form has fields ({', '.join(fields[:5])}) but no files: send each "
                                     f"input as a file (curl -F 'files=@photo.jpg').")
        _count(len(uploads), limits)
        folder.mkdir(parents=True)
        items, names = [], []
        for i, up in enumerate(uploads):
            name = up.filename or f"file {i + 1}"
            suffix = _SUFFIX.search(name)
            path = folder / f"{i}{suffix.group(0).lower() if suffix else ''}"
            path.write_bytes(await up.read())
            items.append(str(path))
            names.append(name)
        return Inputs(items=items, names=names, folder=folder)
    finally:
        await form.close()


async def read_inputs(request: Request, *, modality, limits: Limits, scratch: Path) -> Inputs:
    """The inputs of a ``POST /predict`` for a model of ``modality``: texts as JSON for a modality
    of inline inputs (text), files as multipart for the others; files go to a new folder under
    ``scratch``."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    wanted = "application/json" if modality.inline else "multipart/form-data"
    if kind != wanted:
        how = ('as JSON: {"texts": ["...", ...]}' if modality.inline
               else "as files in a multipart/form-data body (curl -F 'files=@input.ext')")
        sent = f"a body of type {kind}" if kind else "a body without a Content-Type"
        raise HTTPException(415, f"this model classifies {modality.name} inputs, sent {how}; it got {sent}.")
    body = await _body(request, limits)
    if modality.inline:
        return _texts(body, limits)
    return await _files(request, body, limits, scratch / uuid.uuid4().hex)
