"""Pretrained models shipped inside the package (no download at run time).

Each model is a :class:`~linkage_gcn.LinkageClusterer` checkpoint in this folder, with
its preprocessing, metric, merge and calibrated cut recorded inside, so that it takes the
embeddings exactly as the embedding model returns them.
:meth:`LinkageClusterer.pretrained <linkage_gcn.LinkageClusterer.pretrained>` loads one
by name; this module lists them and checks the files.

Examples
--------
>>> from linkage_gcn.pretrained import available_models
>>> available_models()
['dlib-128', 'face-any']
>>> info = model_info("dlib-128")
>>> info.n_features, info.input
(128, "dlib's 128-D ResNet face descriptor, raw (face_recognition.face_encodings)")
>>> model_info("face-any").n_features is None  # any width
True
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

__all__ = ["PretrainedModel", "available_models", "model_info", "model_path"]

_HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class PretrainedModel:
    """What a shipped model is: its file, its input, its training data and a checksum.

    Attributes
    ----------
    name : str
        The name given to :meth:`LinkageClusterer.pretrained
        <linkage_gcn.LinkageClusterer.pretrained>`.
    filename : str
        The checkpoint's file name in this package folder.
    sha256 : str
        The checkpoint's SHA-256, checked on load (a damaged installation
        fails with a clear error, not with odd clusters).
    n_features : int or None
        The embedding width it takes (``None``: any width).
    input : str
        The embeddings it was trained on, as the embedding model returns them.
    training_data : str
        The faces it was trained on.
    card : str
        Where its model card is in the documentation.
    """

    name: str
    filename: str
    sha256: str
    n_features: Optional[int]
    input: str
    training_data: str
    card: str = "docs/pretrained.md"


_MODELS = {
    "dlib-128": PretrainedModel(
        name="dlib-128",
        filename="dlib-128.pt",
        sha256="8659656ec94c63061089be17740c327598dd7c19936da49242c6a1fe94fe2236",
        n_features=128,
        input="dlib's 128-D ResNet face descriptor, raw (face_recognition.face_encodings)",
        training_data=(
            "Labeled Faces in the Wild (13,233 faces of 5,749 people), dlib descriptors "
            "(lfw-dlib); research use"
        ),
    ),
    "face-any": PretrainedModel(
        name="face-any",
        filename="face-any.pt",
        sha256="058b3d21f3076e5afe173e4d75948bb47d8aa88de42feecba35d21d75abdcb98",
        n_features=None,
        input=(
            "the embeddings of any face model (any dimension, raw or L2-normalised; cosine "
            "similarity must mean likeness)"
        ),
        training_data=(
            "the identity-disjoint train half of Labeled Faces in the Wild (6,615 faces of "
            "2,998 people) embedded by two face models, dlib ResNet (lfw-dlib) and OpenCV "
            "Zoo SFace (lfw-sface), each as a long tail and as a family-shaped collection "
            "of its 83 people with 10 faces or more (2,009 faces); research use"
        ),
        card="docs/any_face.md",
    ),
}


def available_models() -> list[str]:
    """The names of the shipped models, sorted."""
    return sorted(_MODELS)


def model_info(name: str) -> PretrainedModel:
    """The :class:`PretrainedModel` record of ``name``.

    Raises
    ------
    ValueError
        When no shipped model has that name (the message lists them).
    """
    if not isinstance(name, str) or name not in _MODELS:
        raise ValueError(
            f"unknown pretrained model {name!r}: the shipped models are {available_models()}."
        )
    return _MODELS[name]


def model_path(name: str, *, verify: bool = True) -> Path:
    """The checkpoint file of the shipped model ``name``, checked against its SHA-256.

    Raises
    ------
    ValueError
        When ``name`` is unknown.
    FileNotFoundError
        When the file is missing from the installation.
    OSError
        When the file does not match its checksum (a damaged installation:
        reinstall linkage-gcn).
    """
    info = model_info(name)
    path = _HERE / info.filename
    if not path.is_file():
        raise FileNotFoundError(
            f"the pretrained model {name!r} is missing from this installation ({path}); "
            "reinstall linkage-gcn."
        )
    if verify and info.sha256:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != info.sha256:
            raise OSError(
                f"the pretrained model file {path} does not match its checksum (damaged "
                "installation?): reinstall linkage-gcn."
            )
    return path
