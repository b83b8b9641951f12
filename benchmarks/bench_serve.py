"""``automl-tl serve`` under load on loopback, beside ``automl-tl predict`` on the same images, in
one run (issue 34). Prints, for each number of concurrent clients, requests/s, p50 and p99
latency, errors and inputs per forward pass; then the CLI's images/s as one process per image and
as one batch call, and the ratios.

    .venv/bin/python benchmarks/bench_serve.py [--clients 1,4,16] [--seconds 10] [--run RUN]
        [--images 200] [--cli-calls 3] [--batch-window-ms 5] [--out F.json]

Each client sends one image per request (multipart, urllib), in a loop, for ``--seconds``; the
loops stop by themselves (at most 64 clients, 120 s a level). Without ``--run`` a small run is
fitted first (MobileNetV2 feature extraction on 36 Fashion-MNIST images, about a minute); the
requests use ``--images`` other Fashion-MNIST images. Only 127.0.0.1 is spoken to.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import _common
import numpy as np

MAX_CLIENTS, MAX_SECONDS = 64, 120.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _multipart(name: str, data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())


def _load(url: str, bodies: list, clients: int, seconds: float) -> dict:
    """``clients`` threads posting ``bodies`` in turn for ``seconds``: requests/s, latencies, errors."""
    stop = time.perf_counter() + seconds
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    start = threading.Barrier(clients + 1)

    def client(i: int) -> None:
        k = i
        start.wait()
        while time.perf_counter() < stop:
            body, kind = bodies[k % len(bodies)]
            k += clients
            req = urllib.request.Request(url + "/predict", data=body, headers={"Content-Type": kind})
            t = time.perf_counter()
            try:
                with urllib.request.urlopen(req, timeout=60) as r:
                    r.read()
                    ok = r.status == 200
            except (urllib.error.URLError, OSError):
                ok = False
            if ok:
                latencies[i].append(time.perf_counter() - t)
            else:
                errors[i] += 1

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    before = _get(url + "/health")["stats"]
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join(timeout=seconds + 120)
    elapsed = time.perf_counter() - t0
    after = _get(url + "/health")["stats"]
    lat = np.array([x for xs in latencies for x in xs])
    passes = after["forward_passes"] - before["forward_passes"]
    return {"clients": clients, "requests": int(lat.size), "errors": int(sum(errors)),
            "requests_per_s": lat.size / elapsed,
            "p50_ms": float(np.percentile(lat, 50) * 1000) if lat.size else None,
            "p99_ms": float(np.percentile(lat, 99) * 1000) if lat.size else None,
            "forward_passes": passes,
            "inputs_per_pass": (after["inputs"] - before["inputs"]) / passes if passes else None}


def _cli(args: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "automl_tl.cli", "predict", *args], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def _fit_run(root: Path) -> Path:
    from automl_tl import AutoTransfer

    data = _common.fashion_folder(root / "train", 12, classes=(0, 1, 7))
    AutoTransfer(backbones=["mobilenetv2"], strategies=["feature_extraction"], trials=1, run_dir=str(root / "run"),
                 report=False, patience=0).fit(str(data))
    return root / "run"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", default="1,4,16", help="comma-separated numbers of concurrent clients")
    ap.add_argument("--seconds", type=float, default=10.0, help="seconds of load at each number of clients")
    ap.add_argument("--run", help="a run directory to serve (default: fit a small image run first)")
    ap.add_argument("--images", type=int, default=200, help="distinct images the clients send")
    ap.add_argument("--cli-calls", type=int, default=3, help="`automl-tl predict` calls of one image each")
    ap.add_argument("--batch-window-ms", type=float, default=5.0)
    ap.add_argument("--out", help="also write the figures to this JSON file")
    a = ap.parse_args()
    clients = [min(int(c), MAX_CLIENTS) for c in a.clients.split(",") if c.strip()]
    seconds = min(a.seconds, MAX_SECONDS)
    root = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    try:
        _bench(a, root, clients, seconds)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _bench(a, root: Path, clients: list[int], seconds: float) -> None:
    run = Path(a.run) if a.run else _fit_run(root)
    images = sorted(str(p) for p in _common.fashion_folder(root / "requests", max(1, a.images // 10),
                                                           split="test").rglob("*.png"))[:a.images]
    bodies = [_multipart(os.path.basename(p), Path(p).read_bytes()) for p in images]

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "automl_tl.cli", "serve", str(run), "--port", str(port),
                               "--batch-window-ms", str(a.batch_window_ms)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(600):
            try:
                _get(url + "/health")
                break
            except OSError:
                if server.poll() is not None:
                    sys.exit(f"the server exited: {server.stderr.read()}")
                time.sleep(0.2)
        # warm-up: Keras traces the model's predict function again for new batch sizes (a pass of
        # one input, then of several, until it generalises the shape): seconds each on a loaded machine
        _load(url, bodies, 1, 2.0)
        _load(url, bodies, max(clients), 3.0)
        levels = [_load(url, bodies, c, seconds) for c in clients]
    finally:
        server.terminate()
        server.wait(timeout=60)

    single = [_cli([str(run), images[i]]) for i in range(a.cli_calls)]
    batch_seconds = _cli([str(run), *images])
    cli = {"process_per_image_s": float(np.mean(single)), "per_image_per_s": 1 / float(np.mean(single)),
           "batch_call_s": batch_seconds, "batch_per_s": len(images) / batch_seconds, "batch_images": len(images)}

    print(f"serve {run} on loopback, one image a request, {seconds:g} s a level, window {a.batch_window_ms:g} ms")
    print(f"{'clients':>8} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'inputs/pass':>12}")
    for r in levels:
        print(f"{r['clients']:>8} {r['requests_per_s']:>8.1f} {r['p50_ms'] or 0:>8.1f} {r['p99_ms'] or 0:>8.1f} "
              f"{r['errors']:>7} {r['inputs_per_pass'] or 0:>12.2f}")
    top, one = max(levels, key=lambda r: r["requests_per_s"]), levels[0]
    print(f"automl-tl predict, one process per image: {cli['process_per_image_s']:.2f} s each "
          f"({cli['per_image_per_s']:.2f} images/s, {a.cli_calls} calls)")
    print(f"automl-tl predict, one call of {len(images)} images: {batch_seconds:.1f} s ({cli['batch_per_s']:.1f} images/s)")
    print(f"ratios: serve at {top['clients']} clients / at {one['clients']}: {top['requests_per_s'] / one['requests_per_s']:.2f}x; "
          f"/ predict per image: {top['requests_per_s'] / cli['per_image_per_s']:.0f}x; "
          f"/ predict batch call: {top['requests_per_s'] / cli['batch_per_s']:.2f}x")
    if a.out:
        Path(a.out).write_text(json.dumps({"levels": levels, "cli": cli, "seconds": seconds,
                                           "batch_window_ms": a.batch_window_ms}, indent=2))


if __name__ == "__main__":
    main()
