"""The HTML gallery: one static page, no server, no network.

:func:`write_gallery` writes ``index.html`` next to the ``thumbs/`` folder:
one card per person (name or id, face and photo counts, the face thumbnails),
people sorted by size, people of one face together at the end, and first the
**links to check** (:func:`links_to_check`): persons held together by a link
the model was unsure of, pairs of persons joined by a link just under the
cut, and persons holding two faces of one photo. A click on a face shows the
photo it came from with the face's box. The footer names every model file
and its licence. The page needs no network: styles and script are inline and
every image is a local file.
"""

from __future__ import annotations

import html
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional
from urllib.parse import quote

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import minimum_spanning_tree

from .._files import atomic_write
from .._version import __version__

__all__ = ["Check", "links_to_check", "write_gallery"]

_STATIC = Path(__file__).resolve().parent / "static"

#: Links closer than this to the cut are shown as uncertain.
MARGIN = 0.1
#: Thumbnails shown per card before "more".
SHOWN = 48


@dataclass(frozen=True)
class Check:
    """One thing to check in the gallery.

    Attributes
    ----------
    kind : {"weak", "near", "same-photo"}
        ``"weak"``: a person held together by a link scored under
        ``cut + margin``; ``"near"``: two persons joined by a link just under
        the cut; ``"same-photo"``: a person holding two faces of one photo.
    persons : tuple of int
        The person(s) concerned.
    faces : tuple of int
        The two faces of the link (or of the photo).
    score : float
        The link's score (``nan`` for ``"same-photo"`` without a link).
    """

    kind: str
    persons: tuple[int, ...]
    faces: tuple[int, int]
    score: float


def links_to_check(
    face_ids: np.ndarray,
    persons: np.ndarray,
    edges: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    *,
    margin: float = MARGIN,
    photo_of: Optional[np.ndarray] = None,
    limit: int = 50,
) -> list[Check]:
    """What the model was least sure about: weak merges, near misses, two faces of one photo.

    Parameters
    ----------
    face_ids : numpy.ndarray of int, shape (n,)
    persons : numpy.ndarray of int, shape (n,)
        The person of each face.
    edges : numpy.ndarray of int, shape (2, E)
        Scored links, as face ids.
    scores : numpy.ndarray, shape (E,)
        Their scores.
    threshold : float
        The link cut.
    margin : float
        How close to the cut a link is uncertain.
    photo_of : numpy.ndarray of int, optional
        The photo of each face (for the same-photo check).
    limit : int
        Most checks of each kind (the weakest first).

    Returns
    -------
    list of Check
        Per person, its weakest link within the person, taken over the
        person's maximum spanning tree (the link without which it would fall
        apart), when under ``threshold + margin``; links between two persons
        scored in ``[threshold - margin, threshold)``; persons with two faces
        of one photo.

    Examples
    --------
    >>> ids = np.arange(4); persons = np.array([0, 0, 1, 1])
    >>> edges = np.array([[0, 1, 2], [1, 2, 3]]); scores = np.array([0.66, 0.55, 0.95])
    >>> [(c.kind, c.persons, c.faces) for c in links_to_check(ids, persons, edges, scores, 0.6)]
    [('weak', (0,), (0, 1)), ('near', (0, 1), (1, 2))]
    """
    face_ids = np.asarray(face_ids, np.int64)
    persons = np.asarray(persons, np.int64)
    n = face_ids.size
    order = np.argsort(face_ids)
    checks: list[Check] = []
    if edges.size and n:
        pos = order[np.searchsorted(face_ids[order], edges)]  # face ids -> rows
        u, v = pos
        s = np.asarray(scores, np.float64)
        inside = persons[u] == persons[v]
        # maximum spanning tree of the links inside persons: minimum over 1 - score (> 0)
        w = 1.0 - s[inside] + 1e-9
        tree = minimum_spanning_tree(sp.coo_matrix((w, (u[inside], v[inside])), shape=(n, n)))
        tree = tree.tocoo()
        tu, tv, ts = tree.row, tree.col, 1.0 - tree.data + 1e-9
        if ts.size:
            tp = persons[tu]
            o = np.lexsort((ts, tp))
            first = o[np.r_[True, tp[o][1:] != tp[o][:-1]]]  # weakest tree link per person
            weak = first[ts[first] < threshold + margin]
            for k in weak[np.argsort(ts[weak])][:limit].tolist():
                checks.append(Check("weak", (int(tp[k]),),
                                    (int(face_ids[tu[k]]), int(face_ids[tv[k]])), float(ts[k])))
        near = np.flatnonzero(~inside & (s >= threshold - margin) & (s < threshold))
        pairs = set()
        for k in near[np.argsort(-s[near], kind="stable")].tolist():
            key = tuple(sorted((int(persons[u[k]]), int(persons[v[k]]))))
            if key in pairs:
                continue
            pairs.add(key)
            checks.append(Check("near", key, (int(face_ids[u[k]]), int(face_ids[v[k]])),
                                float(s[k])))  # fmt: skip
            if len(pairs) >= limit:
                break
    if photo_of is not None and n:
        photo_of = np.asarray(photo_of, np.int64)
        key = persons * (int(photo_of.max()) + 1) + photo_of
        o = np.argsort(key, kind="stable")
        dup = np.flatnonzero(key[o][1:] == key[o][:-1])
        seen = set()
        for k in dup.tolist():
            a, b = o[k], o[k + 1]
            p = int(persons[a])
            if p in seen:
                continue
            seen.add(p)
            checks.append(Check("same-photo", (p,), (int(face_ids[a]), int(face_ids[b])),
                                float("nan")))  # fmt: skip
            if len(seen) >= limit:
                break
    return checks



def _static(name: str) -> str:
    """A file of the page's inline style or script."""
    return (_STATIC / name).read_text(encoding="utf-8")


def _face_link(fid: int, thumb: str, photo: str, lazy: bool, label: str = "") -> str:
    extra = ' loading="lazy"' if lazy else ""
    span = f"<span>{html.escape(label)}</span>" if label else ""
    return (f'<a class="face" href="{html.escape(quote(photo))}" data-face="{fid}" '
            f'title="face {fid}"><img src="{html.escape(quote(thumb))}" alt="face {fid}" '
            f'width="72" height="72"{extra}>{span}</a>')  # fmt: skip


def write_gallery(
    folder: os.PathLike | str,
    *,
    face_ids: np.ndarray,
    persons: np.ndarray,
    person_names: dict[int, str],
    photos: Sequence[str],
    boxes: np.ndarray,
    photo_sizes: np.ndarray,
    thumbs: Sequence[str],
    links: tuple[np.ndarray, np.ndarray],
    threshold: float,
    title: str = "People",
    same_photo: bool = True,
    photo_of: Optional[np.ndarray] = None,
    stats: Any = None,
    model_files: Sequence[Any] = (),
    model_line: str = "",
    software: Sequence[str] = (),
) -> Path:
    """Write ``folder/index.html``: the people, the links to check, the licences.

    Parameters
    ----------
    folder : path-like
        Where to write it (the thumbnails' and photos' paths are relative to it).
    face_ids, persons : numpy.ndarray of int, shape (n,)
        Each face and its person.
    person_names : dict of int to str
        Names of the named persons.
    photos, thumbs : sequence of str, length n
        Each face's photo and thumbnail, as relative URLs (paths) from ``folder``.
    boxes : numpy.ndarray, shape (n, 4)
        Each face's box (x, y, width, height) in its photo's pixels.
    photo_sizes : numpy.ndarray, shape (n, 2)
        Width and height of each face's photo.
    links : (edges, scores)
        Scored links between faces (face ids), for :func:`links_to_check`.
    threshold : float
        The link cut.
    title : str
    same_photo : bool
        List persons with two faces of one photo among the checks (needs ``photo_of``).
    photo_of : numpy.ndarray of int, optional
        Each face's photo number.
    stats : PhotoReport, optional
        Counts shown at the top.
    model_files : sequence of ModelFile
        The face model's files, named with their licence in the footer.
    model_line : str
        The linkage model and its licence, for the footer.
    software : sequence of str
        The software running the face model, with its licence, for the footer.

    Returns
    -------
    pathlib.Path
        The page written (atomically).
    """
    folder = Path(folder)
    face_ids = np.asarray(face_ids, np.int64)
    persons = np.asarray(persons, np.int64)
    row = {int(f): i for i, f in enumerate(face_ids.tolist())}
    checks = links_to_check(face_ids, persons, *links, threshold,
                            photo_of=photo_of if same_photo else None)  # fmt: skip
    flagged: dict[int, list[str]] = {}
    for c in checks:
        for p in c.persons:
            flagged.setdefault(p, []).append(c.kind)
    uniq, inv, counts = np.unique(persons, return_inverse=True, return_counts=True)
    inv = inv.ravel()
    order = np.lexsort((uniq, -counts))
    members = np.split(np.argsort(inv, kind="stable"), np.cumsum(np.bincount(inv))[:-1])
    label = {int(p): person_names.get(int(p), f"Person {int(p)}") for p in uniq.tolist()}

    def thumb(i: int, lazy: bool = False, caption: str = "") -> str:
        return _face_link(int(face_ids[i]), thumbs[i], photos[i], lazy, caption)

    cards, singles = [], []
    for rank, k in enumerate(order.tolist()):
        p, rows = int(uniq[k]), members[k]
        if counts[k] == 1:
            cap = person_names.get(p, str(p))
            singles.append(thumb(int(rows[0]), lazy=len(singles) > 400, caption=cap))
            continue
        lazy = rank > 200
        n_photos = np.unique(photo_of[rows]).size if photo_of is not None else len(rows)
        shown = "".join(thumb(int(i), lazy) for i in rows[:SHOWN])
        more = ""
        if len(rows) > SHOWN:
            rest = "".join(thumb(int(i), True) for i in rows[SHOWN:])
            more = (f"<details><summary>{len(rows) - SHOWN} more</summary>"
                    f'<div class="faces">{rest}</div></details>')
        badge = '<span class="badge">check</span>' if p in flagged else ""
        named = " named" if p in person_names else ""
        cards.append(
            f'<section class="person{" flagged" if p in flagged else ""}{named}" id="p{p}" '
            f'data-person="{p}" data-size="{len(rows)}"><h2>{html.escape(label[p])}{badge}</h2>'
            f'<div class="mute">person {p} &middot; {len(rows)} faces in {n_photos} photos</div>'
            f'<div class="faces">{shown}</div>{more}</section>'
        )
    items = []
    words = {"weak": "held together by an uncertain link", "near": "maybe one person: a link "
             "just under the cut", "same-photo": "two faces of one photo"}  # fmt: skip
    for c in checks:
        who = " and ".join(f'<a href="#p{p}">{html.escape(label[p])}</a>' for p in c.persons)
        score = "" if np.isnan(c.score) else f" (score {c.score:.3f}, cut {threshold:.3f})"
        faces = "".join(thumb(row[f]) for f in c.faces if f in row)
        items.append(f'<li class="check {c.kind}" data-kind="{c.kind}">{faces}<span>{who}: '
                     f"{words[c.kind]}{score}</span></li>")  # fmt: skip
    check_html = (f'<section class="checks"><h2>To check ({len(checks)})</h2><ul>'
                  f'{"".join(items)}</ul></section>') if items else ""  # fmt: skip
    viewer = {int(face_ids[i]): [quote(photos[i]), *[round(float(b), 1) for b in boxes[i]],
                                 int(photo_sizes[i][0]), int(photo_sizes[i][1])]
              for i in range(face_ids.size)}  # fmt: skip
    data = json.dumps(viewer, separators=(",", ":")).replace("</", "<\\/")
    multi = int((counts > 1).sum())
    stat_html = ""
    if stats is not None:
        stat_html = (f'<p class="stats mute"><span>{stats.photos} photos</span>'
                     f"<span>{stats.faces} faces</span><span>{multi} people with several faces"
                     f"</span><span>{stats.singletons} with one</span>"
                     f"<span>{len(stats.unreadable)} unreadable files</span>"
                     f"<span>{stats.no_face} photos without a face (this run)</span></p>")
    lic = "".join(f"<li>{html.escape(m.name)} ({html.escape(m.what)}), from the PyPI package "
                  f"{html.escape(m.package)}: {html.escape(m.licence)}</li>" for m in model_files)
    lic += "".join(f"<li>{html.escape(line)}</li>" for line in software)
    if model_line:
        lic += f"<li>{html.escape(model_line)}</li>"
    singles_html = (f'<section class="person singles" id="singles"><h2>One face each '
                    f'({len(singles)})</h2><div class="faces">{"".join(singles)}</div></section>'
                    if singles else "")  # fmt: skip
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>{html.escape(title)}</title><style>{_static("gallery.css")}</style><script>{_static("gallery-head.js")}</script></head>
<body><header><h1>{html.escape(title)}</h1>{stat_html}
<p class="mute">People sorted by size; click a face for its photo. Name people in names.tsv
(person id, a TAB, the name) and run again.</p></header>
<main>{check_html}<div class="people">{"".join(cards)}</div>{singles_html}</main>
<div id="viewer" hidden><div class="frame"><img alt="photo"><div class="box"></div>
<div class="cap"></div></div></div>
<footer><p>Made by linkage-gcn {__version__} on {time.strftime("%Y-%m-%d %H:%M")};
link cut {threshold:.3f}.
Models and licences:</p><ul>{lic}</ul>
<p>Clusters are groups of similar faces, not identities: check them before acting on them.</p>
</footer>
<script type="application/json" id="faces">{data}</script>
<script>{_static("gallery.js")}</script></body></html>
"""
    target = folder / "index.html"
    atomic_write(target, lambda f: f.write(page.encode("utf-8")), overwrite=True)
    return target
