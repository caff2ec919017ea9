"""The face backends on real photos (../shared/data/lfw-photos), against embeddings made apart.

``lfw-dlib`` and ``lfw-sface`` hold descriptors of the same LFW photos computed by other code
(dlib's own pipeline; YuNet + SFace with OpenCV's alignment): the backends must give the same
vectors for the same faces.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from linkage_gcn.photos import get_backend, load_image

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
PHOTOS = SHARED / "lfw-photos"


def _rows(n: int) -> list[dict[str, str]]:
    if not (PHOTOS / "labels.tsv").is_file():
        pytest.skip("../shared/data/lfw-photos is not available")
    with open(PHOTOS / "labels.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return rows[:: max(1, len(rows) // n)][:n]


def _backend(name: str):
    try:
        return get_backend(name)
    except ImportError as exc:
        pytest.skip(str(exc))


def _central(faces) -> int:
    ctr = faces.boxes[:, :2] + faces.boxes[:, 2:] / 2 - 125.0
    return int(np.argmin((ctr**2).sum(1)))


@pytest.mark.parametrize("name, reference, tolerance", [
    ("dlib", "lfw-dlib/features_raw.npy", 0.1),   # dlib: HOG boxes differ a little
    ("sface", "lfw-sface/features.npy", 0.01),
])  # fmt: skip
def test_backend_gives_the_reference_embeddings(name, reference, tolerance):
    rows = _rows(12)
    backend = _backend(name)
    ref = np.load(SHARED / reference, mmap_mode="r")
    dist = []
    for r in rows:
        image, scale, _ = load_image(PHOTOS / r["file"])
        faces = backend.faces(image)
        assert len(faces) >= 1 and scale == 1.0
        e = faces.embeddings[_central(faces)]
        dist.append(float(np.linalg.norm(e - ref[int(r["lfw_row"])])))
    # same face, same vector (up to the detector's box); another person is ~10x farther
    assert np.median(dist) < tolerance, dist
    other = np.linalg.norm(ref[int(rows[0]["lfw_row"])] - ref[int(rows[-1]["lfw_row"])])
    assert other > 10 * np.median(dist)


def test_a_large_photo_gives_the_faces_of_the_small_one(tmp_path):
    """A 40-megapixel upscale of a photo is read downscaled: the faces are found, boxes scaled."""
    from PIL import Image

    rows = _rows(1)
    backend = _backend("dlib")
    small, _, _ = load_image(PHOTOS / rows[0]["file"])
    big = Image.fromarray(small).resize((7300, 7300), Image.Resampling.BILINEAR)
    big.save(tmp_path / "big.jpg", quality=90)
    image, scale, size = load_image(tmp_path / "big.jpg", max_side=1000)
    assert size == (7300, 7300) and max(image.shape) == 1000
    a, b = backend.faces(small), backend.faces(image).scaled(1 / scale)
    i, j = _central(a), int(np.argmin(((b.boxes[:, :2] + b.boxes[:, 2:] / 2
                                        - 7300 / 2) ** 2).sum(1)))  # fmt: skip
    assert np.allclose(a.boxes[i] * 7300 / 250, b.boxes[j], rtol=0.15, atol=60)
    assert np.linalg.norm(a.embeddings[i] - b.embeddings[j]) < 0.25


@pytest.mark.slow
def test_lfw_photos_pipeline_beats_face_recognition_recipe(tmp_path):
    """On all 500 photos: the dlib pipeline's B-Cubed F above dlib + Chinese whispers at 0.5."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples" / "benchmarks"))
    import bench_photos as bench

    _backend("dlib")
    labels = bench.labelled_photos(PHOTOS)
    base = bench.face_recognition_recipe(PHOTOS, labels)
    ours = bench.run_pipeline("dlib", "dlib-128", labels, tmp_path)
    assert ours["bcubed_f_all"] > base["bcubed_f_all"]
    assert ours["rerun_embedded"] == 50 and ours["persons_kept_id"] >= 0.95 * ours["persons_before"]
