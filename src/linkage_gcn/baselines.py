"""Baselines that a learned linkage model must beat."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils.validation import check_is_fitted

from ._validation import check_features, check_in_options, check_int, check_labels, check_real
from .knn import knn
from .merge import pool_pair_scores, threshold_components
from .metrics import bcubed_fscore

__all__ = ["KNNThresholdClusterer", "knn_edges"]


def knn_edges(X: Any, k: int, *, metric: str = "cosine") -> tuple[np.ndarray, np.ndarray]:
    """Unordered kNN pairs ``i < j`` and their similarity (one entry per pair).

    Examples
    --------
    >>> X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    >>> edge_index, sim = knn_edges(X, 1)
    >>> edge_index.tolist()
    [[0, 1], [1, 2]]
    """
    index, sim = knn(X, k, metric=metric)
    src = np.repeat(np.arange(index.shape[0]), index.shape[1])
    # a pair found from both sides has the same similarity twice: max keeps it
    return pool_pair_scores(
        src, index.reshape(-1), sim.reshape(-1), num_nodes=index.shape[0], pool="max"
    )


class KNNThresholdClusterer(ClusterMixin, BaseEstimator):
    """kNN graph + similarity threshold + connected components.

    The yardstick of the L-GCN paper and of ``../shared/data``: link each item
    to those of its ``k`` nearest neighbours whose similarity is at least
    ``threshold`` and take connected components. With ``threshold="auto"``,
    ``fit(X, y)`` picks the threshold that maximises B-Cubed F on labelled
    ``X``.

    Parameters
    ----------
    k : int
        Neighbours per item.
    threshold : float or "auto"
        Similarity threshold (cosine, or minus the L2 distance).
    metric : {"cosine", "l2"}
        kNN metric.
    grid : array-like, optional
        Thresholds tried by ``"auto"`` (default: 0.30 to 0.95 by 0.0125 for
        cosine).

    Examples
    --------
    >>> from linkage_gcn.datasets import make_identities
    >>> X, y = make_identities(50, random_state=0)
    >>> base = KNNThresholdClusterer(k=10).fit(X, y)
    >>> 0.3 <= base.threshold_ <= 0.95
    True
    """

    def __init__(
        self,
        k: int = 10,
        threshold: Any = "auto",
        metric: str = "cosine",
        grid: Optional[Any] = None,
    ) -> None:
        self.k = k
        self.threshold = threshold
        self.metric = metric
        self.grid = grid

    def fit(self, X: Any, y: Any = None) -> KNNThresholdClusterer:
        """Choose the threshold on labelled ``X`` (or take the given one)."""
        check_in_options(self.metric, ("cosine", "l2"), "metric")
        x, _ = check_features(X, name="X", min_samples=2)
        self.n_features_in_ = int(x.shape[1])
        if isinstance(self.threshold, str) and self.threshold == "auto":
            if y is None:
                raise ValueError("threshold='auto' needs labels y to choose the threshold.")
            labels = check_labels(y, n_samples=x.shape[0], name="y")
            edge_index, sim = self._edges(x.numpy())
            grid = np.arange(0.3, 0.95, 0.0125) if self.grid is None else np.asarray(self.grid)
            f = [
                bcubed_fscore(labels, threshold_components(edge_index, sim, len(x), t))[2]
                for t in grid
            ]
            self.threshold_ = float(grid[int(np.argmax(f))])
        else:
            self.threshold_ = check_real(self.threshold, "threshold")
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Cluster ``X`` with the fitted threshold."""
        check_is_fitted(self, "threshold_")
        x, _ = check_features(X, name="X", min_samples=2)
        edge_index, sim = self._edges(x.numpy())
        return threshold_components(edge_index, sim, len(x), self.threshold_)

    def fit_predict(self, X: Any, y: Any = None, **kwargs: Any) -> np.ndarray:
        """Fit on ``X`` (with ``y`` for ``"auto"``) and cluster it."""
        return self.fit(X, y).predict(X)

    def _edges(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        k = min(check_int(self.k, "k", minimum=1), len(x) - 1)
        return knn_edges(x, k, metric=self.metric)
