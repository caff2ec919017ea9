"""The gallery in a real browser: headless Chromium loads it, every image shows, no script error."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_photos import SquareBackend, Y, draw, photo_set, table

from linkage_gcn.photos import PhotoPipeline

CHROMIUM = next((p for p in (shutil.which("chromium"), "/usr/bin/chromium") if p and
                 os.path.exists(p)), None)  # fmt: skip
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed")


def chromium(url: str, profile: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
           "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000", *extra, url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def console_errors(stderr: str) -> list[str]:
    """Console messages of the page (Chromium logs each as a CONSOLE line): the gallery has none."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


@pytest.fixture(scope="module")
def gallery(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gallery")
    photos, out = tmp / "photos", tmp / "people"
    rows = np.flatnonzero(np.isin(Y, np.arange(8))).tolist()
    photo_set(photos, rows)
    draw(photos / "pair.png", rows[:2])  # two faces of one photo: a check to show
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff")  # reported, not in the gallery
    report = PhotoPipeline(out, backend=SquareBackend()).run(photos)
    return out, report


def test_gallery_loads_with_every_image_and_no_error(gallery, tmp_path):
    out, report = gallery
    run = chromium((out / "index.html").as_uri(), tmp_path / "profile", "--dump-dom")
    assert run.returncode == 0, run.stderr[-2000:]
    dom = run.stdout
    body = re.search(r"<body([^>]*)>", dom).group(1)
    attrs = dict(re.findall(r'data-([\w-]+)="([^"]*)"', body))
    assert attrs.get("ready") == "1", body
    n_faces = dom.count('class="face"')
    assert int(attrs["images-failed"]) == 0
    assert int(attrs["images-loaded"]) == n_faces >= report.faces  # checks repeat some faces
    html_tag = re.search(r"<html([^>]*)>", dom).group(1)
    assert "data-errors" not in html_tag, html_tag
    assert console_errors(run.stderr) == []
    # one card per person of several faces, the one-face people together at the end
    cards = re.findall(r'<section class="person[^"]*" id="p(\d+)" data-person="\d+" '
                       r'data-size="(\d+)"', dom)  # fmt: skip
    sizes = [int(s) for _, s in cards]
    persons = np.array([int(r["person_id"]) for r in table(out)])
    _, counts = np.unique(persons, return_counts=True)
    assert sorted(sizes, reverse=True) == sorted(counts[counts > 1].tolist(), reverse=True)
    assert sizes == sorted(sizes, reverse=True)
    assert dom.count('class="face" href') - dom.count('<li class="check') * 2 >= len(persons)
    assert dom.index('id="singles"') > dom.rindex('data-person=')
    assert 'data-kind="same-photo"' in dom


def test_a_face_opens_its_photo(gallery, tmp_path):
    out, _ = gallery
    url = (out / "index.html").as_uri() + "#face=0"
    run = chromium(url, tmp_path / "profile", "--dump-dom")
    viewer = re.search(r'<div id="viewer"([^>]*)>', run.stdout).group(1)
    assert "hidden" not in viewer and 'data-loaded="1"' in viewer, viewer
    assert console_errors(run.stderr) == []


def test_screenshot(gallery, tmp_path):
    out, _ = gallery
    shot = tmp_path / "gallery.png"
    run = chromium((out / "index.html").as_uri(), tmp_path / "profile",
                   f"--screenshot={shot}", "--window-size=1200,900")  # fmt: skip
    assert run.returncode == 0 and shot.stat().st_size > 10_000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_checks_catch_a_broken_page(gallery, tmp_path):
    out, _ = gallery
    page = out / "index.html"
    bad = tmp_path / "bad.html"
    bad.write_text(page.read_text().replace("thumbs/", "missing/", 1)
                   .replace("</body>", "<script>console.error('x'); nosuch();</script></body>"))
    run = chromium(bad.as_uri(), tmp_path / "profile", "--dump-dom")
    body = dict(re.findall(r'data-([\w-]+)="([^"]*)"', re.search(r"<body([^>]*)>",
                                                                 run.stdout).group(1)))
    assert int(body["images-failed"]) >= 1
    assert len(console_errors(run.stderr)) == 2
    assert "nosuch" in re.search(r"<html([^>]*)>", run.stdout).group(1)
