"""From a folder of photos to people: detect, embed, cluster, browse, keep up to date.

``linkage-gcn photos DIR --out OUT`` on the command line, or::

    from linkage_gcn.photos import PhotoPipeline

    report = PhotoPipeline("people", backend="dlib").run("~/Pictures")
    print(report.summary())                     # people/index.html is the gallery

The modules, one concept each:

* :mod:`~linkage_gcn.photos.images`: finding the image files, reading them
  upright and downscaled;
* :mod:`~linkage_gcn.photos.backends`: face backends (detect, align, embed):
  dlib (``face_recognition``'s models) and OpenCV Zoo's YuNet + SFace;
* :mod:`~linkage_gcn.photos.engines`: the clustering state (a growing
  :class:`~linkage_gcn.incremental.IncrementalClusterer`, or re-clustering
  with ids matched by overlap);
* :mod:`~linkage_gcn.photos.names`: the names file;
* :mod:`~linkage_gcn.photos.pipeline`: the run and the output folder;
* :mod:`~linkage_gcn.photos.gallery`: the static HTML gallery.

The face backends are optional extras (``linkage-gcn[photos-dlib]``,
``linkage-gcn[photos-sface]``); nothing is downloaded at run time. See
``docs/photos.md``.
"""

from __future__ import annotations

from .backends import (
    ARCFACE_TEMPLATE,
    BACKENDS,
    DlibBackend,
    FaceBackend,
    Faces,
    ModelFile,
    SFaceBackend,
    get_backend,
    similarity_transforms,
)
from .engines import IncrementalEngine, RefitEngine, make_engine, match_ids
from .gallery import Check, links_to_check, write_gallery
from .images import EXTENSIONS, ImageError, ImageList, file_digest, find_images, load_image
from .names import NAMES_TEMPLATE, NameEntry, read_names
from .pipeline import OUTPUT_MARKER, PhotoPipeline, PhotoReport, photos_to_people

__all__ = [
    "ARCFACE_TEMPLATE",
    "BACKENDS",
    "EXTENSIONS",
    "NAMES_TEMPLATE",
    "OUTPUT_MARKER",
    "Check",
    "DlibBackend",
    "FaceBackend",
    "Faces",
    "ImageError",
    "ImageList",
    "IncrementalEngine",
    "ModelFile",
    "NameEntry",
    "PhotoPipeline",
    "PhotoReport",
    "RefitEngine",
    "SFaceBackend",
    "file_digest",
    "find_images",
    "get_backend",
    "links_to_check",
    "load_image",
    "make_engine",
    "match_ids",
    "photos_to_people",
    "read_names",
    "similarity_transforms",
    "write_gallery",
]
