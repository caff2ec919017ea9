"""Finding the photos under a folder and reading them, small enough to detect faces in.

:func:`find_images` lists the image files under a folder (by extension, hidden
files and folders skipped); :func:`load_image` decodes one, turned upright by
its EXIF orientation and downscaled so that its longer side is at most
``max_side`` pixels (JPEGs are decoded at a reduced scale directly, so that a
40-megapixel photo costs little). A file that cannot be decoded raises
:class:`ImageError`, which the pipeline reports and skips: one bad file never
stops a run.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

__all__ = ["EXTENSIONS", "ImageError", "ImageList", "file_digest", "find_images", "load_image"]

#: File extensions read as images (lower case): JPEG, PNG, WebP, and a few others Pillow reads.
EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")

#: Longer side, in pixels, of the image the faces are detected in (by default).
MAX_SIDE = 1600


class ImageError(ValueError):
    """A file that cannot be read as an image (corrupt, truncated, not an image)."""


@dataclass(frozen=True)
class ImageList:
    """The image files found under a folder.

    Attributes
    ----------
    root : pathlib.Path
        The folder searched.
    paths : list of str
        The image files, relative to ``root`` (POSIX separators), sorted.
    ignored : int
        Other files seen (not images by their extension).
    """

    root: Path
    paths: list[str] = field(default_factory=list)
    ignored: int = 0

    def __len__(self) -> int:
        return len(self.paths)

    def __repr__(self) -> str:
        root = str(self.root)
        return f"ImageList(root={root!r}, images={len(self.paths)}, ignored={self.ignored})"


def find_images(root: os.PathLike | str, *, exclude: Iterable[os.PathLike | str] = ()) -> ImageList:
    """The image files under ``root``, by extension (:data:`EXTENSIONS`), sorted.

    Parameters
    ----------
    root : path-like
        The folder to search (recursively; hidden files and folders, whose
        name starts with a dot, are skipped).
    exclude : iterable of path-like
        Folders not to enter (the output folder when it is inside ``root``).

    Returns
    -------
    ImageList

    Raises
    ------
    FileNotFoundError
        When ``root`` does not exist.
    NotADirectoryError
        When ``root`` is not a folder.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     for name in ("b.JPG", "a/c.png", "notes.txt", ".hidden.jpg"):
    ...         p = Path(tmp, name)
    ...         p.parent.mkdir(exist_ok=True)
    ...         _ = p.write_bytes(b"")
    ...     found = find_images(tmp)
    >>> found.paths, found.ignored
    (['a/c.png', 'b.JPG'], 1)
    """
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such folder.")
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a folder; give the folder holding the photos.")
    skip = {Path(p).resolve() for p in exclude}
    paths, ignored = [], 0
    for here, dirs, files in os.walk(root):
        dirs[:] = sorted(
            d for d in dirs if not d.startswith(".") and Path(here, d).resolve() not in skip
        )
        for name in files:
            if name.startswith("."):
                continue
            if os.path.splitext(name)[1].lower() in EXTENSIONS:
                paths.append(Path(here, name).relative_to(root).as_posix())
            else:
                ignored += 1
    return ImageList(root, sorted(paths), ignored)


def file_digest(path: os.PathLike | str) -> str:
    """SHA-256 of a file's bytes (hex), read in blocks.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = Path(tmp, "a").write_bytes(b"abc")
    ...     file_digest(Path(tmp, "a"))[:16]
    'ba7816bf8f01cfea'
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_image(
    path: os.PathLike | str, *, max_side: Optional[int] = MAX_SIDE
) -> tuple[np.ndarray, float, tuple[int, int]]:
    """Decode an image as RGB, upright (EXIF orientation), at most ``max_side`` pixels long.

    Parameters
    ----------
    path : path-like
        The image file.
    max_side : int or None
        Longer side of the returned image; larger images are downscaled
        (JPEGs decoded at a reduced scale first). ``None`` keeps the size.

    Returns
    -------
    image : numpy.ndarray of uint8, shape (height, width, 3)
        The pixels, RGB.
    scale : float
        Size of the returned image over the upright original (1.0 when not
        downscaled): a box found in ``image`` is ``box / scale`` in the
        original.
    size : tuple of int
        ``(width, height)`` of the upright original.

    Raises
    ------
    ImageError
        When the file is not an image Pillow can decode, is truncated or
        corrupt, or is larger than Pillow's decompression-bomb guard (twice
        ``PIL.Image.MAX_IMAGE_PIXELS``, about 179 megapixels by default).

    Examples
    --------
    >>> import io, tempfile
    >>> from PIL import Image
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     Image.new("RGB", (4000, 3000), (200, 10, 10)).save(Path(tmp, "big.jpg"))
    ...     image, scale, size = load_image(Path(tmp, "big.jpg"), max_side=800)
    >>> image.shape, round(scale, 3), size
    ((600, 800, 3), 0.2, (4000, 3000))
    """
    from PIL import Image, ImageOps

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # it is downscaled
            with Image.open(path) as im:
                w0, h0 = im.size
                orientation = im.getexif().get(0x0112, 1)
                if max_side is not None and im.format == "JPEG" and max(w0, h0) > max_side:
                    im.draft("RGB", (max_side, max_side))  # DCT scaling: decode at 1/2..1/8
                im.load()
                im = ImageOps.exif_transpose(im) if orientation != 1 else im
                im = im.convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageError(f"{path}: not a readable image ({exc}).") from None
    width, height = (h0, w0) if orientation in (5, 6, 7, 8) else (w0, h0)
    if max_side is not None and max(im.size) > max_side:
        factor = max_side / max(im.size)
        im = im.resize(
            (max(1, round(im.size[0] * factor)), max(1, round(im.size[1] * factor))),
            Image.Resampling.BILINEAR, reducing_gap=2.0,
        )  # fmt: skip
    return np.asarray(im), im.size[0] / width, (width, height)
