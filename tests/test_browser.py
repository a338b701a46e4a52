"""The headless-Chromium helper: it renders a page here, and under CI a missing or broken Chromium fails the
browser test instead of skipping it."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))  # tests/browser.py, whatever pytest's import mode
import browser  # noqa: E402


@pytest.mark.parametrize("ci, outcome", [("true", pytest.fail.Exception), ("1", pytest.fail.Exception),
                                         ("", pytest.skip.Exception), ("false", pytest.skip.Exception)])
def test_missing_chromium_fails_under_ci_and_skips_elsewhere(monkeypatch, tmp_path, ci, outcome):
    monkeypatch.setenv("CHROMIUM", str(tmp_path / "no-such-chromium"))
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="chromium is not installed"):
        browser.require_chromium()


def test_chromium_that_cannot_start_is_an_error(monkeypatch, tmp_path):
    broken = tmp_path / "chromium"
    broken.write_text("#!/bin/sh\necho 'cannot open display' >&2\nexit 1\n")
    broken.chmod(0o755)
    monkeypatch.setenv("CHROMIUM", str(broken))
    assert browser.require_chromium() == str(broken)
    (tmp_path / "page.html").write_text("<html><body>hello</body></html>")
    with pytest.raises(RuntimeError, match=r"chromium wrote no screenshot \(exit 1\): cannot open display"):
        browser.screenshot(tmp_path / "page.html", tmp_path / "shot.png", 200, 100)


def test_chromium_renders_a_page_here(tmp_path):
    browser.require_chromium()
    page = tmp_path / "page.html"
    page.write_text('<html><body style="margin:0;background:#fff"><section style="height:60px;background:#c00">'
                    '</section><img src="data:image/gif;base64,R0lGODlhAQABAIAAAP///wAAACwAAAAAAQABAAACAkQBADs=" '
                    'width="10" height="10"></body></html>')
    png = browser.screenshot(page, tmp_path / "shot.png", 320, 200)
    with Image.open(png) as shot:
        pixels = np.asarray(shot.convert("RGB"))
    assert pixels.shape == (200, 320, 3)
    assert pixels[30, 160].tolist() == [204, 0, 0] and pixels[150, 160].tolist() == [255, 255, 255]
    dom = browser.rendered_dom(page, 320, 200)
    assert 'data-probe="done"' in dom and 'data-height="60"' in dom and 'data-probe="ok 1 1 10 10"' in dom
