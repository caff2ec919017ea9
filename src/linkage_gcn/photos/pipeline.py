"""Photos to people: find, detect, embed, cluster, write the gallery; again, incrementally.

:class:`PhotoPipeline` owns an output folder. :meth:`PhotoPipeline.run` finds
the photos under a folder, embeds the faces of the photos it has not seen
(or that changed), adds them to the clustered library, applies the names
file, and writes:

* ``index.html`` and ``thumbs/``: the gallery (:mod:`linkage_gcn.photos.gallery`);
* ``faces.csv``: one row per face: face id, person id, name, photo, box;
* ``names.tsv``: the names file (a template the first time), read on every run;
* ``report.json``: what the run did (photos, faces, merges, splits, timings);
* ``state/``: the face cache (every embedded photo's faces) and the
  clustering state (:mod:`linkage_gcn.photos.engines`), committed together
  through ``state/manifest.json``, so that an interrupted run loses nothing.

A run embeds only new or changed photos (known by path, size and modification
time, then by content hash), removes the faces of deleted photos, keeps
person ids, and reports merges and splits. Interrupted (Ctrl-C) while
embedding, it keeps what was embedded in ``state/pending.npz``; the next run
continues from there.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import logging
import os
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from .._files import atomic_write
from .._version import __version__
from .backends import FaceBackend, Faces, get_backend
from .engines import load_engine, make_engine
from .images import ImageError, file_digest, find_images, load_image
from .names import NAMES_TEMPLATE, read_names

__all__ = ["OUTPUT_MARKER", "SAME_PHOTO", "PhotoPipeline", "PhotoReport", "photos_to_people"]

#: What ``same_photo`` may be: two faces of one photo in one person are flagged for a
#: check, split apart (a cannot-link), or neither.
SAME_PHOTO = ("flag", "split", "ignore")

logger = logging.getLogger(__name__)

#: The file that marks a folder as the output of this pipeline.
OUTPUT_MARKER = ".linkage-gcn-photos.json"
_FORMAT = "linkage-gcn-photos"
_FORMAT_VERSION = 1
#: Files and folders this pipeline writes in its output folder (anything else is someone's).
_OURS = frozenset({OUTPUT_MARKER, "index.html", "faces.csv", "names.tsv", "report.json",
                   "state", "thumbs", ".lock"})  # fmt: skip
_CHECKPOINT_SECONDS = 60.0
_THUMB = 112


@dataclass
class PhotoReport:
    """What a run of :class:`PhotoPipeline` did.

    Attributes
    ----------
    photos : int
        Image files found.
    embedded : int
        Photos read and embedded in this run (new or changed).
    resumed : int
        Photos embedded by an interrupted run, taken over.
    unchanged, changed, removed : int
        Photos seen before and unchanged; seen before with other content;
        gone since the last run.
    unreadable : list of (str, str)
        Files that could not be read, with the reason (skipped, not fatal).
    no_face : int
        Photos of this run with no face detected.
    faces_found : int
        Faces detected in the photos of this run.
    faces : int
        Faces in the library after the run.
    persons, singletons : int
        Persons (clusters) after the run, and those of one face.
    merged : dict of int to int
        Person ids that disappeared -> the id that took most of their faces.
    split : dict of int to list of int
        Person ids whose faces now carry several ids.
    kept_ids : int
        Persons of the last run whose faces all kept their id.
    new_persons : int
        Persons with an id that the last run did not have.
    named : int
        Named persons.
    engine : str
        ``"incremental"`` or ``"refit"`` (see :mod:`linkage_gcn.photos.engines`).
    seconds : dict of str to float
        Wall time of each step (``embed``, ``cluster``, ``write``, ``total``).
    photos_per_second : float
        Photos embedded per second of embedding (0 when none).
    output : str
        The output folder.
    """

    photos: int = 0
    embedded: int = 0
    resumed: int = 0
    unchanged: int = 0
    changed: int = 0
    removed: int = 0
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    no_face: int = 0
    faces_found: int = 0
    faces: int = 0
    persons: int = 0
    singletons: int = 0
    merged: dict[int, int] = field(default_factory=dict)
    split: dict[int, list[int]] = field(default_factory=dict)
    kept_ids: int = 0
    new_persons: int = 0
    named: int = 0
    engine: str = ""
    seconds: dict[str, float] = field(default_factory=dict)
    photos_per_second: float = 0.0
    output: str = ""

    def __repr__(self) -> str:
        return (f"PhotoReport(photos={self.photos}, embedded={self.embedded}, "
                f"faces={self.faces}, persons={self.persons}, merged={len(self.merged)}, "
                f"split={len(self.split)}, unreadable={len(self.unreadable)})")  # fmt: skip

    def summary(self) -> str:
        """The report as a few lines of text."""
        lines = [
            f"{self.photos} photos: {self.embedded} embedded"
            + (f" ({self.photos_per_second:.1f} photos/s)" if self.embedded else "")
            + (f", {self.resumed} from the interrupted run" if self.resumed else "")
            + f", {self.unchanged} unchanged, {self.changed} changed, {self.removed} removed",
            f"{self.faces_found} faces found in this run ({self.no_face} photos without a face); "
            f"{self.faces} faces in all",
            f"{self.persons} persons ({self.singletons} with one face, {self.named} named); "
            f"{self.kept_ids} kept their id, {self.new_persons} new",
        ]
        if self.merged:
            pairs = ", ".join(f"{a}->{b}" for a, b in sorted(self.merged.items())[:10])
            more = ", ..." if len(self.merged) > 10 else ""
            lines.append(f"merged: {len(self.merged)} ({pairs}{more})")
        if self.split:
            pairs = ", ".join(f"{a}->{b}" for a, b in sorted(self.split.items())[:10])
            lines.append(f"split: {len(self.split)} ({pairs})")
        for path, why in self.unreadable[:10]:
            lines.append(f"unreadable: {path}: {why}")
        if len(self.unreadable) > 10:
            lines.append(f"... and {len(self.unreadable) - 10} more unreadable files")
        return "\n".join(lines)


class _Cache:
    """Every embedded photo (path, size, mtime, digest) and its faces (rows)."""

    def __init__(self, n_features: int) -> None:
        self.paths: list[str] = []
        self.sizes = np.zeros(0, np.int64)
        self.mtimes = np.zeros(0, np.int64)
        self.digests: list[str] = []
        self.dims = np.zeros((0, 2), np.int64)  # width, height of the upright photo
        self.face_photo = np.zeros(0, np.int64)  # row of the photo
        self.face_index = np.zeros(0, np.int64)  # face number within its photo
        self.boxes = np.zeros((0, 4), np.float32)
        self.scores = np.zeros(0, np.float32)
        self.emb = np.zeros((0, n_features), np.float32)
        self.face_ids = np.zeros(0, np.int64)  # -1: not yet in the clustering
        self._pending: list[tuple[tuple[int, int], tuple[int, int], Faces]] = []

    def arrays(self) -> dict[str, np.ndarray]:
        self.flush()
        return {
            "paths": np.array(self.paths, dtype=str), "sizes": self.sizes,
            "mtimes": self.mtimes, "digests": np.array(self.digests, dtype=str),
            "dims": self.dims, "face_photo": self.face_photo, "face_index": self.face_index,
            "boxes": self.boxes, "scores": self.scores, "emb": self.emb,
            "face_ids": self.face_ids,
        }  # fmt: skip

    @classmethod
    def from_arrays(cls, a: dict[str, np.ndarray]) -> _Cache:
        c = cls(a["emb"].shape[1])
        c.paths, c.digests = a["paths"].tolist(), a["digests"].tolist()
        c.sizes, c.mtimes, c.dims = a["sizes"], a["mtimes"], a["dims"].reshape(-1, 2)
        c.face_photo, c.face_index = a["face_photo"], a["face_index"]
        c.boxes, c.scores, c.emb = a["boxes"].reshape(-1, 4), a["scores"], a["emb"]
        c.face_ids = a["face_ids"]
        return c

    def append(self, path: str, stat: tuple[int, int], digest: str, dims: tuple[int, int],
               faces: Faces) -> None:  # fmt: skip
        """Add a photo and its faces (kept aside, joined by :meth:`flush`: no quadratic copies)."""
        self.paths.append(path)
        self.digests.append(digest)
        self._pending.append((stat, dims, faces))

    def flush(self) -> None:
        """Join the photos added since the last call into the arrays, at once."""
        if not self._pending:
            return
        base = len(self.paths) - len(self._pending)
        stats = np.array([p[0] for p in self._pending], np.int64).reshape(-1, 2)
        counts = np.array([len(p[2]) for p in self._pending], np.int64)
        faces = [p[2] for p in self._pending]
        self.sizes = np.concatenate([self.sizes, stats[:, 0]])
        self.mtimes = np.concatenate([self.mtimes, stats[:, 1]])
        self.dims = np.concatenate([self.dims, np.array([p[1] for p in self._pending],
                                                        np.int64).reshape(-1, 2)])  # fmt: skip
        self.face_photo = np.concatenate([self.face_photo,
                                          np.repeat(base + np.arange(counts.size), counts)])
        self.face_index = np.concatenate([self.face_index, *[np.arange(c) for c in counts]])
        self.boxes = np.concatenate([self.boxes, *[f.boxes for f in faces]])
        self.scores = np.concatenate([self.scores, *[f.scores for f in faces]])
        self.emb = np.concatenate([self.emb, *[f.embeddings.astype(np.float32) for f in faces]])
        self.face_ids = np.concatenate([self.face_ids, np.full(int(counts.sum()), -1, np.int64)])
        self._pending = []

    def drop_photos(self, rows: np.ndarray) -> None:
        """Remove photos (and their faces), renumbering the rest."""
        self.flush()
        keep_p = np.ones(len(self.paths), bool)
        keep_p[rows] = False
        new_row = np.cumsum(keep_p) - 1
        keep_f = keep_p[self.face_photo]
        self.paths = [p for p, k in zip(self.paths, keep_p) if k]
        self.digests = [d for d, k in zip(self.digests, keep_p) if k]
        self.sizes, self.mtimes = self.sizes[keep_p], self.mtimes[keep_p]
        self.dims = self.dims[keep_p]
        self.face_photo = new_row[self.face_photo[keep_f]]
        self.face_index, self.boxes = self.face_index[keep_f], self.boxes[keep_f]
        self.scores, self.emb = self.scores[keep_f], self.emb[keep_f]
        self.face_ids = self.face_ids[keep_f]

    def merge(self, other: _Cache) -> None:
        """Append ``other``'s photos and faces."""
        self.flush()
        other.flush()
        base = len(self.paths)
        self.paths += other.paths
        self.digests += other.digests
        self.sizes = np.concatenate([self.sizes, other.sizes])
        self.mtimes = np.concatenate([self.mtimes, other.mtimes])
        self.dims = np.concatenate([self.dims, other.dims])
        self.face_photo = np.concatenate([self.face_photo, other.face_photo + base])
        for name in ("face_index", "boxes", "scores", "emb", "face_ids"):
            setattr(self, name, np.concatenate([getattr(self, name), getattr(other, name)]))

    def thumb(self, rows: np.ndarray) -> list[str]:
        """Thumbnail file names of face rows (content-addressed: digest and face number)."""
        return [f"{self.digests[p][:20]}-{i}.jpg"
                for p, i in zip(self.face_photo[rows].tolist(), self.face_index[rows].tolist())]


class PhotoPipeline:
    """Photos to people in an output folder, kept up to date run after run.

    Parameters
    ----------
    output : path-like
        The output folder: created when missing; an existing one must be
        empty or hold an earlier run of this pipeline (with the same backend
        and model), and is never left half-written.
    backend : str or FaceBackend
        ``"dlib"`` (:class:`~linkage_gcn.photos.backends.DlibBackend`) or
        ``"sface"`` (:class:`~linkage_gcn.photos.backends.SFaceBackend`), or a
        backend object.
    model : str or LinkageClusterer, optional
        The linkage model that clusters the faces: a pretrained model's name
        (:func:`linkage_gcn.pretrained.available_models`) or a fitted
        clusterer. Default: the backend's (``dlib-128`` for dlib, ``face-any``
        for sface).
    names : path-like, optional
        The names file (default ``OUTPUT/names.tsv``, created as a template
        when missing).
    same_photo : {"flag", "split", "ignore"}
        Two faces of one photo in one person: ``"flag"`` (default) lists the
        person among the merges to check in the gallery, without splitting
        it (mirrors, collages and photos of photos hold one person twice, see
        ``docs/photos.md``); ``"split"`` enforces that two faces of one photo
        are two people (a cannot-link: the person is split along its weakest
        links, :func:`~linkage_gcn.merge.separate_groups`; a name outranks
        it); ``"ignore"`` does neither. ``"split"`` is a setting of the
        output folder (the faces are stored with their photo).
    max_side : int
        Photos are downscaled to this longer side before detection.
    engine : {"auto", "incremental", "refit"}
        How the clustering is kept (:mod:`linkage_gcn.photos.engines`):
        ``"auto"`` (default) uses the growing library where the model allows
        it, else re-clusters all faces on every run with ids matched.
    verbose : bool, optional
        Progress bar over the photos (``None``: when standard error is a
        terminal; periodic log lines otherwise).

    Examples
    --------
    >>> pipeline = PhotoPipeline("people", backend=_DocBackend())
    >>> pipeline
    PhotoPipeline(output='people', backend=_DocBackend(n_features=128), model='dlib-128')
    """

    def __init__(
        self,
        output: Union[str, os.PathLike],
        *,
        backend: Union[str, FaceBackend] = "dlib",
        model: Any = None,
        names: Union[str, os.PathLike, None] = None,
        same_photo: str = "flag",
        max_side: int = 1600,
        engine: str = "auto",
        verbose: Optional[bool] = None,
    ) -> None:
        if same_photo not in SAME_PHOTO:
            raise ValueError(f"same_photo must be one of {', '.join(map(repr, SAME_PHOTO))}, "
                             f"got {same_photo!r}.")  # fmt: skip
        if not isinstance(max_side, int) or max_side < 64:
            raise ValueError(f"max_side must be an int of at least 64 pixels, got {max_side!r}.")
        if engine not in ("auto", "incremental", "refit"):
            raise ValueError(f"engine must be 'auto', 'incremental' or 'refit', got {engine!r}.")
        self.engine = engine
        self.output = Path(output)
        self.backend = backend
        self.model = model
        self.names = None if names is None else Path(names)
        self.same_photo = same_photo
        self.max_side = max_side
        self.verbose = verbose

    def __repr__(self) -> str:
        model = self.model
        if not isinstance(model, (str, type(None))):
            model = type(model).__name__
        if model is None and isinstance(self.backend, FaceBackend):
            model = self.backend.default_model
        return (f"PhotoPipeline(output={str(self.output)!r}, backend={self.backend!r}, "
                f"model={model!r})")  # fmt: skip

    # ------------------------------------------------------------------ checks

    def check_output(self, photos: Path) -> Optional[dict[str, Any]]:
        """Refuse an output folder that cannot or must not be written; return its marker.

        Raises
        ------
        NotADirectoryError
            When the output is a file.
        FileExistsError
            When it holds files this pipeline did not write.
        PermissionError
            When it (or the folder it is to be created in) is not writable.
        ValueError
            When it holds a run over another folder, or of another version.
        """
        out = self.output
        if out.exists() and not out.is_dir():
            raise NotADirectoryError(f"output {out} is a file; give a folder.")
        if out.resolve() == photos.resolve():
            raise ValueError(f"output {out} is the photo folder itself; give another folder.")
        marker = None
        if out.is_dir():
            entries = sorted(os.listdir(out))
            if OUTPUT_MARKER in entries:
                marker = _read_json(out / OUTPUT_MARKER)
                if marker.get("format") != _FORMAT or not isinstance(marker.get("version"), int):
                    raise ValueError(f"{out / OUTPUT_MARKER} is not a linkage-gcn photos marker.")
                if marker["version"] > _FORMAT_VERSION:
                    raise ValueError(f"output {out} was written by a newer linkage-gcn "
                                     f"({marker.get('linkage_gcn_version')}); upgrade.")
                if Path(marker["photos"]).resolve() != photos.resolve():
                    raise ValueError(f"output {out} holds the people of {marker['photos']}, not "
                                     f"of {photos}; give another output folder.")  # fmt: skip
            elif entries:
                shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
                raise FileExistsError(f"output {out} holds files that linkage-gcn photos did not "
                                      f"write ({shown}); give a new or empty folder.")  # fmt: skip
            probe_in = out
        else:
            probe_in = next(p for p in out.resolve().parents if p.exists())
        _check_writable(probe_in, out)
        return marker

    # ------------------------------------------------------------------ the run

    def run(self, photos: Union[str, os.PathLike]) -> PhotoReport:
        """Bring the output folder up to date with the photos under ``photos``.

        Parameters
        ----------
        photos : path-like
            The folder of photos (searched recursively).

        Returns
        -------
        PhotoReport

        Raises
        ------
        FileNotFoundError, NotADirectoryError
            When ``photos`` is not a folder.
        ValueError
            When it holds no image file, or on a bad names file, model or
            output folder (see :meth:`check_output`), before any photo is read.
        KeyboardInterrupt
            When interrupted: the photos embedded so far are kept, and the
            next run continues after them.
        """
        t0 = time.perf_counter()
        photos = Path(photos)
        found = find_images(photos, exclude=[self.output])
        marker = self.check_output(photos)
        if not found.paths:
            extra = (f" ({found.ignored} other files, none with an image extension: .jpg, "
                     ".jpeg, .png, .webp, ...)") if found.ignored else " (it is empty)"  # fmt: skip
            raise ValueError(f"no photos under {photos}{extra}.")
        names_path = self.names if self.names is not None else self.output / "names.tsv"
        entries = read_names(names_path) if names_path.is_file() else []
        if self.names is not None and not names_path.is_file():
            raise FileNotFoundError(f"names file {names_path} does not exist.")
        backend = get_backend(self.backend)
        clusterer, model_name = self._clusterer(backend)
        settings = {"backend": backend.settings(), "model": model_name,
                    "max_side": self.max_side}  # fmt: skip
        if self.same_photo == "split":  # the faces are stored with their photo
            settings["same_photo"] = "split"
        if marker is not None and marker.get("settings") != settings:
            raise ValueError(
                f"output {self.output} was made with other settings ({_settings_text(marker)}); "
                "give another output folder for these, or the same settings."
            )
        self.output.mkdir(parents=True, exist_ok=True)
        with _lock(self.output):
            if marker is None:
                self._init_output(photos, settings)
            return self._run(photos, found.paths, entries, backend, clusterer, model_name, t0)

    def _clusterer(self, backend: FaceBackend) -> tuple[Any, str]:
        from ..estimator import LinkageClusterer
        from ..pretrained import available_models

        model = self.model if self.model is not None else backend.default_model
        if isinstance(model, str):
            if model not in available_models():
                raise ValueError(
                    f"the {backend.name} backend clusters with the pretrained model {model!r}, "
                    f"which this installation does not have (it has {available_models()}); "
                    "pass model= (--model) with one of them, or a fitted LinkageClusterer."
                )
            clusterer = LinkageClusterer.pretrained(model)
            name = model
        else:
            clusterer, name = model, "custom:" + _fingerprint(model)[:16]
        width = getattr(clusterer, "n_features_in_", None)
        structure = clusterer.resolved_params().get("features") == "structure"
        if not structure and width is not None and width != backend.n_features:
            raise ValueError(f"the model {name!r} takes {width}-D embeddings; the "
                             f"{backend.name} backend gives {backend.n_features}-D ones.")
        return clusterer, name

    def _init_output(self, photos: Path, settings: dict[str, Any]) -> None:
        (self.output / "state").mkdir(exist_ok=True)
        (self.output / "thumbs").mkdir(exist_ok=True)
        if self.names is None and not (self.output / "names.tsv").exists():
            atomic_write(self.output / "names.tsv", lambda f: f.write(NAMES_TEMPLATE.encode()),
                         overwrite=False)  # fmt: skip
        marker = {"format": _FORMAT, "version": _FORMAT_VERSION, "photos": str(photos.resolve()),
                  "settings": settings, "linkage_gcn_version": __version__}  # fmt: skip
        _write_json(self.output / OUTPUT_MARKER, marker)

    def _run(self, photos: Path, paths: list[str], entries: list[Any], backend: FaceBackend,
             clusterer: Any, model_name: str, t0: float) -> PhotoReport:  # fmt: skip
        state = self.output / "state"
        state.mkdir(exist_ok=True)
        (self.output / "thumbs").mkdir(exist_ok=True)
        manifest_path = state / "manifest.json"
        manifest = _read_json(manifest_path) if manifest_path.exists() else None
        if manifest is None:
            cache, engine = _Cache(backend.n_features), make_engine(clusterer, self.engine)
        else:
            from .._archive import read_state

            _, arrays = read_state(state / manifest["faces"])
            cache = _Cache.from_arrays(arrays)
            engine = load_engine(manifest["engine_kind"], state / manifest["engine"], clusterer)
        report = PhotoReport(photos=len(paths), engine=engine.kind, output=str(self.output))
        old_labels = dict(zip(engine.face_ids_.tolist(), engine.labels_.tolist()))

        # 1. what changed since the last run
        index = {p: i for i, p in enumerate(cache.paths)}
        stats = {p: _stat(photos / p) for p in paths}
        todo, gone = [], []
        for p in paths:
            i = index.get(p)
            if i is None:
                todo.append(p)
            elif (int(cache.sizes[i]), int(cache.mtimes[i])) != stats[p]:
                todo.append(p)
            else:
                report.unchanged += 1
        gone = [index[p] for p in set(index) - set(stats)]
        report.removed = len(gone)

        # 2. embed (resumable), new photos into `fresh`
        pending_path = state / "pending.npz"
        fresh = self._load_pending(pending_path, backend)
        have = {p: i for i, p in enumerate(fresh.paths)}
        t_embed = time.perf_counter()
        queue = []
        for p in todo:
            i = have.get(p)
            if i is not None and (int(fresh.sizes[i]), int(fresh.mtimes[i])) == stats[p]:
                report.resumed += 1
            else:
                queue.append(p)
        stale = [have[p] for p in set(have) - set(todo)]
        if stale:
            fresh.drop_photos(np.array(sorted(stale)))
        for p in [p for p in queue if p in have]:
            fresh.drop_photos(np.array([fresh.paths.index(p)]))
        changed_same = self._embed(photos, queue, stats, cache, index, fresh, backend,
                                   pending_path, report)  # fmt: skip
        fresh.flush()
        report.embedded = len(queue) - len(report.unreadable) - changed_same
        embed_s = time.perf_counter() - t_embed
        report.photos_per_second = report.embedded / embed_s if report.embedded else 0.0
        report.no_face = int(sum(1 for i in range(len(fresh.paths))
                                 if not (fresh.face_photo == i).any()))  # fmt: skip
        report.faces_found = len(fresh.face_ids)

        # 3. cluster: names first (ids as the last gallery showed them), removals, additions
        t_cluster = time.perf_counter()
        replaced = [index[p] for p in fresh.paths if p in index]
        report.changed = len(replaced)
        drop_rows = np.array(sorted(set(gone) | set(replaced)), np.int64)
        self._apply_names(engine, entries)
        if drop_rows.size:
            dropped = cache.face_ids[np.isin(cache.face_photo, drop_rows)]
            engine.remove(dropped[dropped >= 0])
            cache.drop_photos(drop_rows)
        reports = []
        if len(fresh.face_ids):
            groups = _photo_groups(fresh) if self.same_photo == "split" else None
            r = engine.add(fresh.emb, groups)
            fresh.face_ids = np.asarray(r.face_ids, np.int64)
            reports.append(r)
        cache.merge(fresh)
        cluster_s = time.perf_counter() - t_cluster

        # 4. commit, then the views
        t_write = time.perf_counter()
        self._commit(state, manifest, cache, engine, model_name)
        with contextlib.suppress(FileNotFoundError):
            pending_path.unlink()
        labels = dict(zip(engine.face_ids_.tolist(), engine.labels_.tolist()))
        self._fill_report(report, engine, old_labels, labels)
        self._write_views(photos, cache, engine, backend, model_name, report)
        report.seconds = {"embed": embed_s, "cluster": cluster_s,
                          "write": time.perf_counter() - t_write,
                          "total": time.perf_counter() - t0}  # fmt: skip
        _write_json(self.output / "report.json", _plain(asdict(report)))
        logger.info("photos -> people: %r", report)
        return report

    def _load_pending(self, path: Path, backend: FaceBackend) -> _Cache:
        if not path.exists():
            return _Cache(backend.n_features)
        from .._archive import read_state

        try:
            header, arrays = read_state(path)
        except ValueError as exc:
            logger.warning("ignoring the unreadable resume file %s (%s)", path, exc)
            return _Cache(backend.n_features)
        if header.get("kind") != "photos-pending" or arrays["emb"].shape[1] != backend.n_features:
            return _Cache(backend.n_features)
        return _Cache.from_arrays(arrays)

    def _save_pending(self, path: Path, fresh: _Cache) -> None:
        from .._archive import write_state

        write_state(path, {"kind": "photos-pending"}, fresh.arrays(), overwrite=True)

    def _embed(self, photos: Path, queue: list[str], stats: dict[str, tuple[int, int]],
               cache: _Cache, index: dict[str, int], fresh: _Cache, backend: FaceBackend,
               pending_path: Path, report: PhotoReport) -> int:  # fmt: skip
        """Embed the photos of ``queue`` into ``fresh``; return how many had not changed."""
        from .._progress import progress

        same = 0
        last = time.perf_counter()
        bar = progress(queue, total=len(queue), desc="photos", unit="photo",
                       verbose=self.verbose, long=len(queue) > 20)  # fmt: skip
        thumbs = self.output / "thumbs"
        try:
            for p in bar:
                path = photos / p
                try:
                    digest = file_digest(path)
                    old = index.get(p)
                    if old is not None and cache.digests[old] == digest:  # touched, not changed
                        cache.sizes[old], cache.mtimes[old] = stats[p]
                        same += 1
                        continue
                    image, scale, dims = load_image(path, max_side=self.max_side)
                except (ImageError, OSError) as exc:
                    report.unreadable.append((p, _reason(exc)))
                    continue
                faces = backend.faces(image)
                _write_thumbs(thumbs, image, faces, digest)
                fresh.append(p, stats[p], digest, dims, faces.scaled(1.0 / scale))
                if time.perf_counter() - last > _CHECKPOINT_SECONDS:
                    self._save_pending(pending_path, fresh)
                    last = time.perf_counter()
        except KeyboardInterrupt:
            bar.close()
            if fresh.paths:
                self._save_pending(pending_path, fresh)
                raise KeyboardInterrupt(
                    f"{len(fresh.paths)} photos embedded so far are kept in {pending_path}; run "
                    "the same command again to continue"
                ) from None
            raise
        bar.close()
        return same

    def _apply_names(self, engine: Any, entries: list[Any]) -> None:
        """Make the engine's names those of the names file (the file is the truth)."""
        ids, labels = engine.face_ids_, engine.labels_
        want = np.full(ids.size, None, dtype=object)
        persons = set(labels.tolist())
        for e in entries:
            if e.kind == "person":
                if e.id not in persons:
                    raise ValueError(f"names file line {e.line}: there is no person {e.id} "
                                     "(see the gallery for the person ids).")  # fmt: skip
                want[labels == e.id] = e.name
        for e in entries:
            if e.kind == "face":
                hit = ids == e.id
                if not hit.any():
                    raise ValueError(f"names file line {e.line}: there is no face {e.id}.")
                want[hit] = e.name
        have = engine.names_
        differ = np.flatnonzero(np.array([a != b for a, b in zip(want, have)], dtype=bool))
        if differ.size:
            engine.name(ids[differ], want[differ].tolist())

    def _commit(self, state: Path, manifest: Optional[dict[str, Any]], cache: _Cache,
                engine: Any, model_name: str) -> None:  # fmt: skip
        """Write the new face cache and clustering state, then switch the manifest to them."""
        from .._archive import write_state

        gen = (manifest or {}).get("generation", 0) + 1
        tag = f"{gen:06d}-{secrets.token_hex(3)}"
        faces_file, engine_file = f"faces-{tag}.npz", f"engine-{tag}.npz"
        write_state(state / faces_file, {"kind": "photos-faces"}, cache.arrays())
        engine.save(state / engine_file)
        _write_json(state / "manifest.json", {
            "generation": gen, "faces": faces_file, "engine": engine_file,
            "engine_kind": engine.kind, "model": model_name,
        })  # fmt: skip
        keep = {faces_file, engine_file, "manifest.json", "pending.npz"}
        for old in os.listdir(state):
            if old not in keep and not old.startswith("."):
                with contextlib.suppress(OSError):
                    (state / old).unlink()

    def _fill_report(self, report: PhotoReport, engine: Any, old: dict[int, int],
                     new: dict[int, int]) -> None:  # fmt: skip
        labels = engine.labels_
        uniq, counts = np.unique(labels, return_counts=True)
        report.faces = int(labels.size)
        report.persons, report.singletons = int(uniq.size), int((counts == 1).sum())
        names = engine.names_
        report.named = int(np.unique(labels[names != None]).size)  # noqa: E711
        # persons of the last run, by their faces still here
        before: dict[int, set[int]] = {}
        for f, p in old.items():
            before.setdefault(p, set()).add(f)
        after_of = {f: new.get(f) for f in old}
        kept = sum(1 for p, fs in before.items() if all(after_of[f] == p for f in fs if f in new)
                   and any(f in new for f in fs))  # fmt: skip
        report.kept_ids = kept
        report.new_persons = int(np.setdiff1d(uniq, np.array(list(before) or [-1])).size)
        # merges and splits over the whole run, from the ids of the faces present before and after
        moved: dict[int, dict[int, int]] = {}
        for f, p in old.items():
            q = new.get(f)
            if q is not None:
                moved.setdefault(p, {}).setdefault(q, 0)
                moved[p][q] += 1
        alive = set(uniq.tolist())
        report.merged = {p: max(t, key=t.get) for p, t in moved.items() if p not in alive}
        report.split = {p: sorted(t) for p, t in moved.items() if len(t) > 1}

    def _write_views(self, photos: Path, cache: _Cache, engine: Any, backend: FaceBackend,
                     model_name: str, report: PhotoReport) -> None:  # fmt: skip
        from ..pretrained import available_models, model_info
        from .gallery import write_gallery

        order = np.argsort(cache.face_ids)
        ids = cache.face_ids[order]
        rows = order
        pos = np.searchsorted(engine.face_ids_, ids)
        person = engine.labels_[pos]
        names = engine.names_
        # a person's name: the name of its named faces (one at most: cannot-link)
        person_name: dict[int, str] = {}
        for p, n in zip(engine.labels_.tolist(), names.tolist()):
            if n is not None:
                person_name[p] = n
        photo_rel = [cache.paths[i] for i in cache.face_photo[rows].tolist()]
        thumbs = cache.thumb(rows)
        boxes = cache.boxes[rows]
        dims = cache.dims[cache.face_photo[rows]]
        rel_root = os.path.relpath(photos.resolve(), self.output.resolve())
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["face_id", "person_id", "name", "photo", "x", "y", "width", "height",
                    "detection_score", "thumbnail"])  # fmt: skip
        for k in np.lexsort((ids, person)).tolist():
            x, y, bw, bh = (round(float(v), 1) for v in boxes[k])
            w.writerow([int(ids[k]), int(person[k]), person_name.get(int(person[k]), ""),
                        photo_rel[k], x, y, bw, bh, round(float(cache.scores[rows[k]]), 4),
                        f"thumbs/{thumbs[k]}"])  # fmt: skip
        atomic_write(self.output / "faces.csv", lambda f: f.write(buf.getvalue().encode()),
                     overwrite=True)  # fmt: skip
        edges, scores = engine.links()
        if model_name in available_models():
            info = model_info(model_name)
            model_line = (f"{model_name}: linkage-gcn pretrained model, MIT; trained on "
                          f"{info.training_data}")  # fmt: skip
        else:
            model_line = f"{model_name}: a linkage model given by the user"
        write_gallery(
            self.output, face_ids=ids, persons=person, person_names=person_name,
            photos=[f"{rel_root}/{p}" if rel_root != "." else p for p in photo_rel],
            boxes=boxes, photo_sizes=dims, thumbs=[f"thumbs/{t}" for t in thumbs],
            links=(edges, scores), threshold=engine.threshold,
            same_photo=self.same_photo != "ignore", photo_of=cache.face_photo[rows],
            title=f"People in {photos.name or photos}",
            stats=report, model_files=backend.model_files, model_line=model_line,
            software=getattr(backend, "software", ()),
        )  # fmt: skip
        used = set(thumbs)
        for name in os.listdir(self.output / "thumbs"):
            if name not in used and name.endswith(".jpg"):
                with contextlib.suppress(OSError):
                    (self.output / "thumbs" / name).unlink()


def photos_to_people(photos: Union[str, os.PathLike], output: Union[str, os.PathLike],
                     **options: Any) -> PhotoReport:  # fmt: skip
    """``PhotoPipeline(output, **options).run(photos)``: photos to people in one call."""
    return PhotoPipeline(output, **options).run(photos)


# ---------------------------------------------------------------------- helpers


def _photo_groups(cache: _Cache) -> np.ndarray:
    """A group id per face: its photo's path, hashed (stable across runs; copies differ)."""
    ids = np.array([int.from_bytes(hashlib.blake2b(p.encode(), digest_size=7).digest(), "big")
                    for p in cache.paths], dtype=np.int64)  # fmt: skip
    return ids[cache.face_photo]


def _stat(path: Path) -> tuple[int, int]:
    s = path.stat()
    return int(s.st_size), int(s.st_mtime_ns)


def _reason(exc: BaseException) -> str:
    text = str(exc.strerror if isinstance(exc, OSError) and exc.strerror else exc)
    return text.split(": ", 1)[-1] if isinstance(exc, ImageError) else text


def _write_thumbs(folder: Path, image: np.ndarray, faces: Faces, digest: str) -> None:
    """Square face crops (with a margin), :data:`_THUMB` pixels, JPEG."""
    from PIL import Image

    h, w = image.shape[:2]
    for i, (x, y, bw, bh) in enumerate(faces.boxes.tolist()):
        side = max(bw, bh) * 1.4
        cx, cy = x + bw / 2, y + bh / 2
        x0, y0 = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
        x1, y1 = int(min(w, cx + side / 2)), int(min(h, cy + side / 2))
        crop = Image.fromarray(image[y0:max(y1, y0 + 1), x0:max(x1, x0 + 1)])
        crop.thumbnail((_THUMB, _THUMB))
        target = folder / f"{digest[:20]}-{i}.jpg"
        if not target.exists():
            data = io.BytesIO()
            crop.save(data, "JPEG", quality=85)
            atomic_write(target, lambda f, d=data: f.write(d.getvalue()), overwrite=True)


def _check_writable(folder: Path, out: Path) -> None:
    """Create and remove a file in ``folder``: permission bits and read-only mounts alike."""
    probe = folder / f".linkage-gcn-probe-{secrets.token_hex(4)}"
    try:
        probe.write_bytes(b"")
    except OSError as exc:
        raise PermissionError(exc.errno, f"output {out} cannot be written ({exc.strerror}"
                              f" in {folder})") from None  # fmt: skip
    probe.unlink()


@contextlib.contextmanager
def _lock(out: Path):  # type: ignore[no-untyped-def]
    """One run at a time per output folder (a lock file naming the process)."""
    path = out / ".lock"
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            break
        except FileExistsError:
            try:
                pid = int(path.read_text() or 0)
            except (OSError, ValueError):
                pid = 0
            if pid and _alive(pid):
                raise ValueError(f"output {out} is being written by another run (process "
                                 f"{pid}); wait for it to finish.") from None  # fmt: skip
            path.unlink(missing_ok=True)  # a run that died
    else:  # pragma: no cover - a race with another run
        raise ValueError(f"output {out} is locked ({path}).")
    try:
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        yield
    finally:
        path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path} cannot be read ({exc}).") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} does not hold a JSON object.")
    return data


def _write_json(path: Path, data: dict[str, Any]) -> None:
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    atomic_write(path, lambda f: f.write(text.encode()), overwrite=True)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _settings_text(marker: dict[str, Any]) -> str:
    s = marker.get("settings", {})
    return (f"backend {s.get('backend', {}).get('name')}, model {s.get('model')}, "
            f"max side {s.get('max_side')}, same photo {s.get('same_photo', 'flag')}")  # fmt: skip


def _fingerprint(clusterer: Any) -> str:
    from ..incremental import model_fingerprint

    return model_fingerprint(clusterer)


class _DocBackend(FaceBackend):
    """A stand-in backend for the examples (no face found)."""

    name = "doc"
    n_features = 128
    default_model = "dlib-128"

    def faces(self, image: np.ndarray) -> Faces:
        return Faces.empty(self.n_features)
