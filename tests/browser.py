"""Headless Chromium for tests: find it, take a screenshot of a page, and read the DOM as the browser rendered it.

Debian's ``chromium`` package (``apt-get install -y chromium``) provides the binary; ``$CHROMIUM`` overrides the
search. Without one a browser test skips, except under CI (``$CI`` set, as CI services do and ``.ci/run`` does),
where it fails: CI must not pass a rendering test that rendered nothing.

The rendered-DOM check runs a copy of the page with a small probe script appended, which records on each
``<img>`` whether it decoded (``naturalWidth``) and its laid-out size, and on each ``<section>`` its height; the page
under test itself stays script-free.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars"]

PROBE = """<script>
window.addEventListener('load', function () {
  document.querySelectorAll('img').forEach(function (im, i) {
    var r = im.getBoundingClientRect();
    im.setAttribute('data-probe', [im.complete && im.naturalWidth > 0 ? 'ok' : 'broken',
                                   im.naturalWidth, im.naturalHeight, Math.round(r.width),
                                   Math.round(r.height)].join(' '));
  });
  document.querySelectorAll('section').forEach(function (s) {
    s.setAttribute('data-height', Math.round(s.getBoundingClientRect().height));
  });
  document.documentElement.setAttribute('data-probe', 'done');
});
</script>"""


def find_chromium() -> str | None:
    """The path of a Chromium binary, or None."""
    env = os.environ.get("CHROMIUM")
    if env:
        return shutil.which(env) or (env if Path(env).is_file() else None)
    return next((p for p in map(shutil.which, CANDIDATES) if p), None)


def under_ci() -> bool:
    """True when ``$CI`` is set to anything but empty, 0 or false."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false")


def require_chromium() -> str:
    """The Chromium binary for a test: skip without one, fail instead under CI."""
    import pytest

    binary = find_chromium()
    if binary is None:
        reason = "chromium is not installed (apt-get install -y chromium, or set $CHROMIUM)"
        if under_ci():
            pytest.fail(f"CI=true: {reason}", pytrace=False)
        pytest.skip(reason)
    return binary


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    binary = find_chromium()
    if binary is None:
        raise FileNotFoundError("no chromium binary (apt-get install -y chromium)")
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        env = {**os.environ, "HOME": profile}  # chromium writes caches under $HOME
        return subprocess.run([binary, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True,
                              timeout=timeout, env=env)


def screenshot(html: str | Path, png: str | Path, width: int = 1280, height: int = 4000,
               timeout: float = 120) -> Path:
    """Render ``html`` (a file) and save a ``width``×``height`` screenshot of its top to ``png``."""
    png = Path(png).resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    if png.exists():
        png.unlink()
    proc = _run([f"--screenshot={png}", f"--window-size={width},{height}", "--virtual-time-budget=10000",
                 Path(html).resolve().as_uri()], timeout)
    if not png.is_file():
        raise RuntimeError(f"chromium wrote no screenshot (exit {proc.returncode}): {proc.stderr[-2000:]}")
    return png


def rendered_dom(html: str | Path, width: int = 1280, height: int = 4000, timeout: float = 120) -> str:
    """The DOM of ``html`` after the browser loaded and laid it out, with the probe's attributes
    (``data-probe`` on ``<html>`` and each ``<img>``, ``data-height`` on each ``<section>``)."""
    html = Path(html)
    with tempfile.TemporaryDirectory(prefix="probe-") as tmp:
        copy = Path(tmp) / html.name
        text = html.read_text(encoding="utf-8")
        copy.write_text(text.replace("</body>", PROBE + "</body>") if "</body>" in text else text + PROBE,
                        encoding="utf-8")
        proc = _run(["--dump-dom", f"--window-size={width},{height}", "--virtual-time-budget=10000", copy.as_uri()],
                    timeout)
    if proc.returncode != 0 or "<html" not in proc.stdout:
        raise RuntimeError(f"chromium --dump-dom failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
    return proc.stdout
