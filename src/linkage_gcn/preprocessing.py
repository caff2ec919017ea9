"""Embedding preprocessing as fitted parameters: none, L2 or centring + L2.

Face embedders return descriptors in their own geometry: dlib's 128-D ResNet
descriptors (what ``face_recognition.face_encodings`` returns) have a norm of
about 1.42 and are compared by Euclidean distance (same person below 0.6),
ArcFace-style embeddings are compared by cosine. Measured on LFW, the raw dlib
descriptors cluster better than a centred + L2 copy, so preprocessing is a
parameter whose fitted state (the training mean) travels with a model and is
applied again at predict time.

:class:`EmbeddingPreprocessor` is a scikit-learn transformer; the functions
:func:`fit_preprocessing` and :func:`apply_preprocessing` are its pure,
tensor-level core (CPU or GPU).
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ._validation import ArrayLike, check_features, check_in_options, normalize_rows, to_like

__all__ = [
    "PREPROCESSING",
    "EmbeddingPreprocessor",
    "apply_preprocessing",
    "fit_preprocessing",
]

#: Preprocessing methods: ``"none"`` (as given), ``"l2"`` (each row scaled to unit
#: norm), ``"center-l2"`` (the training mean subtracted, then unit norm).
PREPROCESSING = ("none", "l2", "center-l2")


def fit_preprocessing(x: torch.Tensor, method: str) -> Optional[torch.Tensor]:
    """The fitted state of ``method`` on ``x``: the mean row for ``"center-l2"``, else None.

    Examples
    --------
    >>> fit_preprocessing(torch.tensor([[1.0, 0.0], [3.0, 2.0]]), "center-l2")
    tensor([2., 1.])
    >>> fit_preprocessing(torch.ones(2, 2), "l2") is None
    True
    """
    method = check_in_options(method, PREPROCESSING, "preprocessing")
    if method == "center-l2":
        return x.mean(dim=0)
    return None


def apply_preprocessing(x: torch.Tensor, method: str, mean: Optional[Any] = None) -> torch.Tensor:
    """Apply ``method`` with its fitted ``mean`` (``"center-l2"`` only) to ``x``.

    Raises
    ------
    ValueError
        On an unknown method, a missing, mis-sized or non-finite mean, or a
        row whose norm is zero after centring (it has no direction to
        normalise).

    Examples
    --------
    >>> x = torch.tensor([[3.0, 4.0], [0.0, 2.0]])
    >>> apply_preprocessing(x, "l2")
    tensor([[0.6000, 0.8000],
            [0.0000, 1.0000]])
    >>> apply_preprocessing(x, "none") is x
    True
    """
    method = check_in_options(method, PREPROCESSING, "preprocessing")
    if method == "none":
        return x
    if method == "center-l2":
        m = None if mean is None else torch.as_tensor(mean)
        if m is None or m.shape != (x.shape[1],):
            got = "none" if m is None else tuple(m.shape)
            raise ValueError(
                f"center-l2 preprocessing needs the fitted mean of shape ({x.shape[1]},), "
                f"got {got}."
            )
        if not bool(torch.isfinite(m).all()):
            raise ValueError(
                "the fitted mean of center-l2 preprocessing holds NaN or infinity (a damaged "
                "model?); fit the preprocessing again."
            )
        x = x - m.to(device=x.device, dtype=x.dtype)
    return normalize_rows(
        x,
        f"{{count}} row(s) have zero norm after {method!r} preprocessing (first: row {{row}}), "
        "so they have no direction to normalise (e.g. an all-zero embedding, or one equal to "
        "the training mean); drop them or use preprocessing='none'.",
    )


class EmbeddingPreprocessor(TransformerMixin, BaseEstimator):
    """Preprocess embeddings before clustering: none, L2 or centring + L2.

    Parameters
    ----------
    method : {"none", "l2", "center-l2"}
        ``"none"`` keeps the embeddings (raw dlib descriptors with Euclidean
        distance cluster best on LFW); ``"l2"`` scales every row to unit norm;
        ``"center-l2"`` subtracts the mean of the data seen by :meth:`fit`,
        then scales to unit norm.

    Attributes
    ----------
    mean_ : numpy.ndarray of shape (n_features,) or None
        The training mean (``"center-l2"`` only).
    n_features_in_ : int
        Feature dimension seen in ``fit``.

    Examples
    --------
    >>> X = np.array([[1.0, 0.0], [3.0, 2.0]])
    >>> pre = EmbeddingPreprocessor("center-l2").fit(X)
    >>> pre.mean_
    array([2., 1.])
    >>> pre.transform(np.array([[2.0, 3.0]]))
    array([[0., 1.]])
    >>> pre
    EmbeddingPreprocessor(method='center-l2')
    """

    def __init__(self, method: str = "none") -> None:
        self.method = method

    def fit(self, X: Any, y: Any = None) -> EmbeddingPreprocessor:
        """Fit the state of :attr:`method` (the mean for ``"center-l2"``)."""
        x, _ = check_features(X, name="X")
        mean = fit_preprocessing(x, self.method)
        self.mean_ = None if mean is None else mean.cpu().numpy()
        self.n_features_in_ = int(x.shape[1])
        return self

    def transform(self, X: Any) -> ArrayLike:
        """Preprocess ``X`` (numpy in, numpy out; a tensor stays a tensor on its device)."""
        check_is_fitted(self, "n_features_in_")
        x, was_numpy = check_features(X, name="X")
        if x.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {x.shape[1]} features, but {type(self).__name__} was fitted with "
                f"{self.n_features_in_}."
            )
        mean = None if self.mean_ is None else torch.from_numpy(np.asarray(self.mean_))
        return to_like(apply_preprocessing(x, self.method, mean), was_numpy)
