"""The photo pipeline on tiny generated images: finding, reading, names, runs, bad input."""

from __future__ import annotations

import csv
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PIL")
from PIL import Image

from linkage_gcn.cli import main
from linkage_gcn.photos import (
    FaceBackend,
    Faces,
    ImageError,
    PhotoPipeline,
    find_images,
    load_image,
    match_ids,
    read_names,
)
from linkage_gcn.photos.backends import ARCFACE_TEMPLATE, similarity_transforms

BG = (128, 128, 128)


def dlib_like_faces(n_identities=40, seed=0):
    """Descriptors shaped like dlib's: norm about 1.4, people ~0.85 apart, photos ~0.3."""
    rng = np.random.default_rng(seed)
    common = rng.normal(size=128)
    common *= 1.25 / np.linalg.norm(common)
    centres = rng.normal(size=(n_identities, 128))
    centres *= 0.6 / np.linalg.norm(centres, axis=1, keepdims=True)
    y = np.repeat(np.arange(n_identities), rng.integers(1, 12, n_identities))
    x = common + centres[y] + rng.normal(scale=0.3 / np.sqrt(128), size=(y.size, 128))
    return x.astype(np.float32), y


X, Y = dlib_like_faces()  # the "face model" behind the squares


class SquareBackend(FaceBackend):
    """Faces are 16 x 16 squares; the colour (r, g) encodes a row of X, blue is 200."""

    name = "squares"
    n_features = 128
    default_model = "dlib-128"

    def __init__(self, interrupt_after=None):
        self.calls = 0
        self.interrupt_after = interrupt_after

    def faces(self, image):
        if self.interrupt_after is not None and self.calls >= self.interrupt_after:
            raise KeyboardInterrupt
        self.calls += 1
        mask = image[:, :, 2] == 200
        from scipy import ndimage

        lab, n = ndimage.label(mask)
        if n == 0:
            return Faces.empty(128)
        sl = ndimage.find_objects(lab)
        boxes = np.array([[s[1].start, s[0].start, s[1].stop - s[1].start,
                           s[0].stop - s[0].start] for s in sl], np.float32)
        rows = [int(image[s[0].start + 2, s[1].start + 2, 0]) * 256
                + int(image[s[0].start + 2, s[1].start + 2, 1]) for s in sl]
        lm = np.repeat(boxes[:, None, :2], 5, 1)
        return Faces(boxes, lm, np.ones(n, np.float32), X[rows].astype(np.float32))


def draw(path: Path, rows, size=(96, 64), fmt=None):
    """An image with one square face per row of X."""
    img = np.full((size[1], size[0], 3), BG, np.uint8)
    for k, r in enumerate(rows):
        x = 4 + 22 * k
        img[8:24, x:x + 16] = (r // 256, r % 256, 200)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path, format=fmt)  # PNG keeps the colours exact


def photo_set(root: Path, rows):
    for r in rows:
        draw(root / f"id{Y[r]:02d}" / f"r{r:03d}.png", [r])


def table(out: Path):
    with open(out / "faces.csv", newline="") as f:
        return list(csv.DictReader(f))


def person_of(out: Path):
    return {int(r["face_id"]): int(r["person_id"]) for r in table(out)}


# ---------------------------------------------------------------------- finding and reading


def test_find_images_by_extension_skips_hidden_and_excluded(tmp_path):
    for name in ["a.jpg", "b.PNG", "c.webp", "d.txt", ".e.jpg", ".hid/f.jpg", "out/g.jpg",
                 "sub/h.jpeg"]:
        p = tmp_path / name
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(b"x")
    found = find_images(tmp_path, exclude=[tmp_path / "out"])
    assert found.paths == ["a.jpg", "b.PNG", "c.webp", "sub/h.jpeg"]
    assert found.ignored == 1
    with pytest.raises(NotADirectoryError):
        find_images(tmp_path / "a.jpg")
    with pytest.raises(FileNotFoundError):
        find_images(tmp_path / "nope")


def test_load_image_formats_orientation_and_corrupt(tmp_path):
    img = np.zeros((30, 50, 3), np.uint8)
    img[:, :10] = 255  # a white band on the left
    for fmt in ("PNG", "WEBP", "JPEG"):
        Image.fromarray(img).save(tmp_path / f"a.{fmt.lower()}", format=fmt, quality=95)
        got, scale, size = load_image(tmp_path / f"a.{fmt.lower()}")
        assert got.shape == (30, 50, 3) and scale == 1.0 and size == (50, 30)
        assert got[:, :10].mean() > 200 and got[:, 20:].mean() < 40
    # EXIF orientation 6 (rotate 90 clockwise to view): the band goes to the top
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(img).save(tmp_path / "rot.jpg", exif=exif.tobytes(), quality=95)
    got, _, size = load_image(tmp_path / "rot.jpg")
    assert got.shape == (50, 30, 3) and size == (30, 50)
    assert got[:10].mean() > 200 and got[20:].mean() < 40
    # corrupt and truncated files, and a text file named .jpg
    data = (tmp_path / "a.jpeg").read_bytes()
    (tmp_path / "trunc.jpg").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.jpg").write_text("not an image")
    for bad in ("trunc.jpg", "text.jpg"):
        with pytest.raises(ImageError, match=bad):
            load_image(tmp_path / bad)


def test_40_megapixel_photo_is_downscaled_before_detection(tmp_path):
    Image.new("RGB", (8000, 5000), (90, 120, 150)).save(tmp_path / "big.jpg", quality=80)
    got, scale, size = load_image(tmp_path / "big.jpg", max_side=1600)
    assert size == (8000, 5000) and max(got.shape[:2]) == 1600
    assert scale == pytest.approx(0.2)


def test_similarity_transform_recovers_a_known_one():
    rng = np.random.default_rng(0)
    angle, s, t = 0.3, 1.7, np.array([12.0, -4.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    # points = inverse map of the template: template = s R p + t  <=>  p = R^T (template - t) / s
    pts = (ARCFACE_TEMPLATE - t) @ rot / s
    m = similarity_transforms(np.stack([pts, pts + rng.normal(0, 1e-9, pts.shape)]),
                              ARCFACE_TEMPLATE)
    for mi in m:
        assert np.allclose(mi[:, :2], s * rot, atol=1e-6) and np.allclose(mi[:, 2], t, atol=1e-6)


# ---------------------------------------------------------------------- ids and names


def test_match_ids_keeps_ids_and_reports_merges_and_splits():
    # unchanged clustering under another numbering: every id kept
    ids, merged, split, nxt = match_ids(np.array([9, 9, 4, 4, 7]), np.array([0, 0, 1, 1, 2]),
                                        np.zeros(5, bool), 3)
    assert ids.tolist() == [0, 0, 1, 1, 2] and not merged and not split and nxt == 3
    # 0 and 1 merge (1 has more faces: it survives), a new face alone gets a fresh id
    ids, merged, split, nxt = match_ids(np.array([0, 0, 0, 0, 0, 1]),
                                        np.array([0, 0, 1, 1, 1, -1]), np.zeros(6, bool), 3)
    assert ids.tolist() == [1, 1, 1, 1, 1, 3] and merged == {0: 1} and nxt == 4
    # a named face decides the survivor
    named = np.array([True, False, False, False, False, False])
    ids, merged, _, _ = match_ids(np.zeros(6, int), np.array([0, 0, 1, 1, 1, -1]), named, 3)
    assert set(ids.tolist()) == {0} and merged == {1: 0}


def test_names_file_errors_name_the_line(tmp_path):
    p = tmp_path / "names.tsv"
    for text, match in [("12 Ann\n", "line 1: expected"), ("x12\tAnn\n", "line 1: 'x12'"),
                        ("12\t\n", "empty"), ("12\tAnn\nperson:12\tBob\n", "lines 1 and 2")]:
        p.write_text(text)
        with pytest.raises(ValueError, match=match):
            read_names(p)


# ---------------------------------------------------------------------- runs


def test_runs_embed_only_new_photos_keep_ids_and_names(tmp_path):
    photos, out = tmp_path / "photos", tmp_path / "people"
    first = np.flatnonzero(np.isin(Y, np.arange(10)))  # the faces of identities 0-9
    photo_set(photos, first.tolist())
    backend = SquareBackend()
    r1 = PhotoPipeline(out, backend=backend).run(photos)
    assert r1.embedded == len(first) == backend.calls == r1.faces_found == r1.faces
    rows = table(out)
    assert len(rows) == len(first)
    assert {r["photo"] for r in rows} == {f"id{Y[i]:02d}/r{i:03d}.png" for i in first}
    before = person_of(out)
    assert (out / "index.html").is_file() and (out / "names.tsv").is_file()
    # nothing new: nothing embedded, the same table
    r2 = PhotoPipeline(out, backend=backend).run(photos)
    assert r2.embedded == 0 and backend.calls == len(first) and person_of(out) == before
    assert r2.kept_ids == r1.persons
    # new photos of new identities: only those embedded, every earlier person keeps its id
    new = np.flatnonzero(np.isin(Y, np.arange(10, 14)))
    photo_set(photos, new.tolist())
    r3 = PhotoPipeline(out, backend=backend).run(photos)
    assert r3.embedded == len(new) and backend.calls == len(first) + len(new)
    after = person_of(out)
    assert {f: after[f] for f in before} == before
    assert r3.kept_ids == r1.persons and not r3.merged
    # names: two persons named; the names stay over a run adding photos
    pa, pb = sorted(set(before.values()))[:2]
    (out / "names.tsv").write_text(f"{pa}\tAnn\nperson:{pb}\tBob\n")
    PhotoPipeline(out, backend=backend).run(photos)
    more = np.flatnonzero(np.isin(Y, np.arange(14, 16)))
    photo_set(photos, more.tolist())
    PhotoPipeline(out, backend=backend).run(photos)
    rows = table(out)
    by_person: dict[int, set[str]] = {}
    for r in rows:
        by_person.setdefault(int(r["person_id"]), set()).add(r["name"])
    named = {int(r["person_id"]): r["name"] for r in rows if r["name"]}
    assert named[pa] == "Ann" and named[pb] == "Bob"
    assert all(len(v) == 1 for v in by_person.values())  # one name per person (or none)
    html = (out / "index.html").read_text()
    assert "Ann" in html and "Bob" in html


def test_one_name_for_two_persons_joins_them_and_two_names_never_share(tmp_path):
    photos, out = tmp_path / "photos", tmp_path / "people"
    rows = np.flatnonzero(np.isin(Y, np.arange(6)))
    photo_set(photos, rows.tolist())
    PhotoPipeline(out, backend=SquareBackend()).run(photos)
    persons = sorted(set(person_of(out).values()))
    a, b = persons[0], persons[1]
    (out / "names.tsv").write_text(f"{a}\tSame\n{b}\tSame\n")
    r = PhotoPipeline(out, backend=SquareBackend()).run(photos)
    got = table(out)
    same = {int(x["person_id"]) for x in got if x["name"] == "Same"}
    assert len(same) == 1 and r.merged  # one person now, the merge reported
    # a face line naming one face of that person otherwise splits it off
    face = int(next(x["face_id"] for x in got if x["name"] == "Same"))
    (out / "names.tsv").write_text(f"{same.pop()}\tSame\nface:{face}\tOther\n")
    PhotoPipeline(out, backend=SquareBackend()).run(photos)
    got = table(out)
    names_of: dict[int, set[str]] = {}
    for x in got:
        names_of.setdefault(int(x["person_id"]), set()).add(x["name"])
    assert all(len(v - {""}) <= 1 for v in names_of.values())
    assert {x["name"] for x in got if int(x["face_id"]) == face} == {"Other"}


def test_refit_engine_keeps_ids_too(tmp_path):
    photos, out = tmp_path / "photos", tmp_path / "people"
    first = np.flatnonzero(np.isin(Y, np.arange(8)))
    photo_set(photos, first.tolist())
    r1 = PhotoPipeline(out, backend=SquareBackend(), engine="refit").run(photos)
    assert r1.engine == "refit"
    before = person_of(out)
    photo_set(photos, np.flatnonzero(np.isin(Y, np.arange(8, 11))).tolist())
    r2 = PhotoPipeline(out, backend=SquareBackend()).run(photos)  # the saved kind is kept
    assert r2.engine == "refit" and r2.embedded == int(np.isin(Y, np.arange(8, 11)).sum())
    after = person_of(out)
    assert {f: after[f] for f in before} == before


def test_changed_and_removed_photos(tmp_path):
    photos, out = tmp_path / "photos", tmp_path / "people"
    rows = np.flatnonzero(np.isin(Y, np.arange(5))).tolist()
    photo_set(photos, rows)
    backend = SquareBackend()
    PhotoPipeline(out, backend=backend).run(photos)
    gone = photos / f"id{Y[rows[0]]:02d}" / f"r{rows[0]:03d}.png"
    gone.unlink()
    changed = photos / f"id{Y[rows[1]]:02d}" / f"r{rows[1]:03d}.png"
    draw(changed, [rows[1], rows[2]])  # now two faces
    touched = photos / f"id{Y[rows[3]]:02d}" / f"r{rows[3]:03d}.png"
    os.utime(touched, ns=(1, 1))  # new time, same content: not embedded again
    calls = backend.calls
    r = PhotoPipeline(out, backend=backend).run(photos)
    assert (r.removed, r.changed, r.embedded) == (1, 1, 1) and backend.calls == calls + 1
    got = table(out)
    assert len(got) == len(rows) - 1 + 1
    assert sum(x["photo"] == changed.relative_to(photos).as_posix() for x in got) == 2
    assert len({x["thumbnail"] for x in got}) == len(got)
    assert all((out / x["thumbnail"]).is_file() for x in got)
    assert len(os.listdir(out / "thumbs")) == len(got)  # the removed photo's thumbnails went


def test_same_photo_faces_are_flagged(tmp_path):
    photos, out = tmp_path / "photos", tmp_path / "people"
    rows = np.flatnonzero(Y == 0).tolist()
    photo_set(photos, rows)
    draw(photos / "group.png", rows[:2])  # two faces of one person in one photo (a mirror)
    PhotoPipeline(out, backend=SquareBackend()).run(photos)
    html = (out / "index.html").read_text()
    assert 'data-kind="same-photo"' in html
    PhotoPipeline(tmp_path / "ignored", backend=SquareBackend(), same_photo="ignore").run(photos)
    assert 'data-kind="same-photo"' not in (tmp_path / "ignored" / "index.html").read_text()



@pytest.mark.parametrize("engine", ["incremental", "refit"])
def test_same_photo_split_puts_two_faces_of_one_photo_in_two_persons(tmp_path, engine):
    photos, out = tmp_path / "photos", tmp_path / "people"
    rows = np.flatnonzero(Y == 0).tolist()
    photo_set(photos, rows)
    draw(photos / "group.png", [rows[0], rows[0]])  # one face twice (a mirror): two people
    PhotoPipeline(out, backend=SquareBackend(), engine=engine, same_photo="split").run(photos)
    group = [r for r in table(out) if r["photo"] == "group.png"]
    assert len(group) == 2 and group[0]["person_id"] != group[1]["person_id"]
    # without the option the two faces are one person (they are): the split is the option's
    PhotoPipeline(tmp_path / "flag", backend=SquareBackend(), engine=engine).run(photos)
    group = [r for r in table(tmp_path / "flag") if r["photo"] == "group.png"]
    assert group[0]["person_id"] == group[1]["person_id"]
    # the constraint holds on the next run (stored with the faces), and ids stay
    before = person_of(out)
    draw(photos / "id01" / "extra.png", [int(np.flatnonzero(Y == 1)[0])])  # someone else
    PhotoPipeline(out, backend=SquareBackend(), engine=engine, same_photo="split").run(photos)
    group = [r for r in table(out) if r["photo"] == "group.png"]
    assert group[0]["person_id"] != group[1]["person_id"]
    after = person_of(out)
    twins = {int(r["face_id"]) for r in group}  # either copy may be the one that stays
    assert all(after[f] == p for f, p in before.items() if f not in twins)
    # the setting belongs to the output folder
    with pytest.raises(ValueError, match="same photo split"):
        PhotoPipeline(out, backend=SquareBackend(), engine=engine).run(photos)


def test_resume_after_interrupt_embeds_only_the_rest(tmp_path):
    photos, out = tmp_path / "photos", tmp_path / "people"
    rows = np.flatnonzero(np.isin(Y, np.arange(6))).tolist()
    photo_set(photos, rows)
    with pytest.raises(KeyboardInterrupt, match="run the same command again"):
        PhotoPipeline(out, backend=SquareBackend(interrupt_after=7)).run(photos)
    assert (out / "state" / "pending.npz").is_file()
    backend = SquareBackend()
    r = PhotoPipeline(out, backend=backend).run(photos)
    assert r.resumed == 7 and r.embedded == len(rows) - 7 == backend.calls
    assert len(table(out)) == len(rows) and not (out / "state" / "pending.npz").exists()


# ---------------------------------------------------------------------- bad input


def test_bad_photo_folders(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="it is empty"):
        PhotoPipeline(tmp_path / "o1", backend=SquareBackend()).run(empty)
    texts = tmp_path / "texts"
    texts.mkdir()
    (texts / "a.txt").write_text("x")
    (texts / "b.pdf").write_bytes(b"%PDF")
    with pytest.raises(ValueError, match="2 other files, none with an image extension"):
        PhotoPipeline(tmp_path / "o2", backend=SquareBackend()).run(texts)
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()


def test_corrupt_and_faceless_photos_are_reported_not_fatal(tmp_path):
    photos, out = tmp_path / "photos", tmp_path / "people"
    rows = np.flatnonzero(Y == 1).tolist()
    photo_set(photos, rows)
    (photos / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 50)
    draw(photos / "nobody.png", [])
    r = PhotoPipeline(out, backend=SquareBackend()).run(photos)
    assert [p for p, _ in r.unreadable] == ["corrupt.jpg"] and r.no_face == 1
    assert r.faces == len(rows)
    r = PhotoPipeline(out, backend=SquareBackend()).run(photos)  # reported again, not fatal
    assert [p for p, _ in r.unreadable] == ["corrupt.jpg"] and r.embedded == 0


def test_output_folder_of_someone_else_is_refused_untouched(tmp_path):
    photos = tmp_path / "photos"
    photo_set(photos, np.flatnonzero(Y == 2).tolist())
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.docx").write_text("precious")
    with pytest.raises(FileExistsError, match="did not write"):
        PhotoPipeline(out, backend=SquareBackend()).run(photos)
    assert os.listdir(out) == ["thesis.docx"] and (out / "thesis.docx").read_text() == "precious"
    # a file as output, the photo folder as output, another photo folder's output
    with pytest.raises(NotADirectoryError):
        PhotoPipeline(out / "thesis.docx", backend=SquareBackend()).run(photos)
    with pytest.raises(ValueError, match="photo folder itself"):
        PhotoPipeline(photos, backend=SquareBackend()).run(photos)
    good = tmp_path / "people"
    PhotoPipeline(good, backend=SquareBackend()).run(photos)
    other = tmp_path / "other"
    photo_set(other, np.flatnonzero(Y == 3).tolist())
    with pytest.raises(ValueError, match="holds the people of"):
        PhotoPipeline(good, backend=SquareBackend()).run(other)


def _read_only(path: Path):
    """Make ``path`` read-only for this process; None where that cannot be done."""
    path.chmod(0o555)
    probe = path / ".probe"
    try:
        probe.write_bytes(b"")
    except OSError:
        return lambda: path.chmod(0o755)
    probe.unlink()
    path.chmod(0o755)  # root writes through permission bits: a read-only bind mount instead
    try:
        subprocess.run(["mount", "--bind", str(path), str(path)], check=True,
                       capture_output=True)
        subprocess.run(["mount", "-o", "remount,ro,bind", str(path)], check=True,
                       capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        subprocess.run(["umount", str(path)], capture_output=True)
        return None
    return lambda: subprocess.run(["umount", str(path)], check=True)


def test_read_only_output_folder_fails_clearly_and_keeps_the_previous_run(tmp_path):
    photos, out = tmp_path / "photos", tmp_path / "people"
    photo_set(photos, np.flatnonzero(Y == 4).tolist())
    PhotoPipeline(out, backend=SquareBackend()).run(photos)
    snapshot = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    photo_set(photos, np.flatnonzero(Y == 5).tolist())
    undo = _read_only(out)
    if undo is None:
        pytest.skip("cannot make a folder read-only here")
    try:
        with pytest.raises(PermissionError, match="cannot be written"):
            PhotoPipeline(out, backend=SquareBackend()).run(photos)
    finally:
        undo()
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == snapshot


def test_settings_of_the_pipeline_are_checked():
    with pytest.raises(ValueError, match="same_photo"):
        PhotoPipeline("x", same_photo="enforce")
    with pytest.raises(ValueError, match="max_side"):
        PhotoPipeline("x", max_side=10)
    with pytest.raises(ValueError, match="engine"):
        PhotoPipeline("x", engine="fast")


def test_unknown_model_and_unknown_names_fail_before_work(tmp_path):
    photos, out = tmp_path / "photos", tmp_path / "people"
    photo_set(photos, np.flatnonzero(Y == 6).tolist())
    backend = SquareBackend()
    with pytest.raises(ValueError, match="does not have"):
        PhotoPipeline(out, backend=backend, model="no-such-model").run(photos)
    assert backend.calls == 0
    PhotoPipeline(out, backend=backend).run(photos)
    (out / "names.tsv").write_text("9999\tNobody\n")
    with pytest.raises(ValueError, match="line 1: there is no person 9999"):
        PhotoPipeline(out, backend=backend).run(photos)


# ---------------------------------------------------------------------- command line


def test_cli_errors_are_one_line(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["photos", str(empty), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("linkage-gcn photos: error: no photos under")
