"""Open report.html in headless Chromium: renders, no console errors, XSS payloads stay text.

The screenshot is saved under tmp_path and copied to tests/report/_artifacts/ (git-ignored);
its path is printed (run with -s to see it, or read the test's captured stdout).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from automl_tl.report import write_report

from .conftest import XSS_CLASS, XSS_LABEL
from automl_tl.testing import missing

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).parent / "_artifacts"


def _chromium() -> str | None:
    forced = os.environ.get("AUTOML_TL_CHROMIUM")  # a path, or "none" to skip these tests
    if forced:
        return None if forced.lower() == "none" else shutil.which(forced)
    for name in ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _run_chromium(exe: str, profile: Path, url: str, *extra: str) -> subprocess.CompletedProcess:
    cmd = [
        exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
        "--enable-logging=stderr", "--v=0", "--window-size=1366,900", *extra, url,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=90)


def _console_errors(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if "CONSOLE" in ln or "Uncaught" in ln or "Refused to" in ln]


class _DOM(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, list]] = []
        self.text: list[str] = []
        self._in_title = False
        self.title = ""

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))
        self._in_title = tag == "title"

    def handle_endtag(self, tag):
        self._in_title = False

    def handle_data(self, data):
        self.text.append(data)
        if self._in_title:
            self.title += data


@pytest.fixture(scope="module")
def chromium():
    exe = _chromium()
    if exe is None:
        missing("headless Chromium not found: install it (e.g. `apt-get install -y chromium`) or set AUTOML_TL_CHROMIUM=/path/to/chrome")
    return exe


def test_harness_sees_console_errors(chromium, tmp_path):
    """The check below is only worth something if a console error would show up in stderr."""
    page = tmp_path / "bad.html"
    page.write_text("<!DOCTYPE html><html><body><script>console.error('probe-error'); undefinedFn();</script></body></html>")
    res = _run_chromium(chromium, tmp_path / "profile", page.as_uri(), "--dump-dom")
    assert any("probe-error" in ln or "Uncaught" in ln for ln in _console_errors(res.stderr)), res.stderr[-2000:]


def test_report_renders_without_errors_and_payloads_stay_text(chromium, make_run_dir, tmp_path):
    run = make_run_dir("run", classes=[XSS_CLASS, XSS_LABEL, "plain"], backbones=["<b>bold</b>", "resnet50"])
    html_path = write_report(run)["html"]
    url = html_path.resolve().as_uri()

    shot = tmp_path / "report.png"
    res = _run_chromium(chromium, tmp_path / "profile1", url, f"--screenshot={shot}")
    assert shot.is_file() and shot.stat().st_size > 10_000, res.stderr[-2000:]
    ARTIFACTS.mkdir(exist_ok=True)
    kept = ARTIFACTS / "report_screenshot.png"
    shutil.copyfile(shot, kept)
    print(f"\nscreenshot: {shot}\nscreenshot copy: {kept}")
    assert not _console_errors(res.stderr), _console_errors(res.stderr)

    res = _run_chromium(chromium, tmp_path / "profile2", url, "--dump-dom")
    assert res.returncode == 0, res.stderr[-2000:]
    assert not _console_errors(res.stderr), _console_errors(res.stderr)
    dom = _DOM()
    dom.feed(res.stdout)
    names = [t for t, _ in dom.tags]
    assert "script" not in names and "svg" not in names
    assert not [a for _, attrs in dom.tags for a, _ in attrs if a.startswith("on")]
    assert all(v.startswith("data:image/png;base64,") for t, attrs in dom.tags if t == "img" for a, v in attrs if a == "src")
    text = "".join(dom.text)
    assert XSS_CLASS in text and XSS_LABEL in text and "<b>bold</b>" in text  # shown as text
    assert dom.title.startswith("automl-tl report")
    assert len(re.findall(r"<section", res.stdout)) >= 8


def test_compare_page_renders_without_errors(chromium, make_run_dir, tmp_path):
    from automl_tl.report import write_comparison

    runs = [make_run_dir(f"n{n}", n_samples=n, seed=i, classes=[XSS_CLASS, "b"]) for i, n in enumerate((100, 1000))]
    html_path = write_comparison(runs, tmp_path / "cmp")["html"]
    res = _run_chromium(chromium, tmp_path / "profile", html_path.resolve().as_uri(), "--dump-dom")
    assert res.returncode == 0 and not _console_errors(res.stderr), res.stderr[-2000:]
    dom = _DOM()
    dom.feed(res.stdout)
    assert "script" not in [t for t, _ in dom.tags]
    assert dom.title == "automl-tl strategy comparison"
