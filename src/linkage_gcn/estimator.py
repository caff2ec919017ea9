"""``LinkageClusterer``: the whole L-GCN pipeline behind an sklearn-like estimator."""

from __future__ import annotations

import io as _io
import warnings
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array, check_is_fitted

from . import __version__
from ._files import atomic_write
from ._validation import (
    as_tensor,
    check_features,
    check_in_options,
    check_int,
    check_labels,
    check_real,
    resolve_device,
)
from .ips import check_k_at_hop
from .knn import check_knn_index, knn
from .losses import resolve_loss
from .merge import POOLS, pool_pair_scores, propagate_labels, threshold_components
from .metrics import bcubed_fscore
from .nn import LinkageGCN
from .samplers import NeighborSampler, resolve_sampler
from .training import predict_links, train_linkage_gcn

__all__ = ["LinkageClusterer"]

MERGES = ("threshold", "propagation")
_FORMAT = "linkage-gcn-checkpoint"
#: Thresholds tried when ``threshold="auto"``.
_GRID = np.round(np.arange(0.05, 0.99, 0.0125), 4)


class LinkageClusterer(ClusterMixin, BaseEstimator):
    """Cluster embeddings by predicting links with a graph convolution network (L-GCN).

    ``fit(X, y)`` trains a :class:`~linkage_gcn.nn.LinkageGCN` on labelled
    embeddings; ``predict(X)`` clusters a new, unlabelled set: kNN graph,
    Instance Pivot Subgraphs around every node, link scores, pooled over both
    directions, merged into clusters.

    Parameters
    ----------
    k_at_hop : (int, int)
        ``(k1, k2)``: 1-hop neighbours per pivot (the links scored) and 2-hop
        neighbours per 1-hop node (context).
    active_connection : int
        ``u``: each IPS node links to its ``u`` nearest neighbours inside the IPS.
    sampler : {"riws", "rs", "topk"} or NeighborSampler
        How training pivots choose their 1-hop sets: Reverse-Imbalance
        Weighted Sampling (default), plain re-sampling, or the ``k1`` nearest
        (L-GCN).
    gamma : float
        Pool expansion of ``"rs"``/``"riws"``: they draw from the
        ``floor(gamma * k1)`` nearest neighbours.
    loss : {"cb-graph", "cb", "focal", "ce"} or callable
        Class balance inside each subgraph (default: every pivot weighs the
        same, its links balanced), class balance over the batch (the paper's
        code), focal loss, or the L-GCN cross-entropy.
    epochs, batch_size : int
        Training passes over all pivots, and IPS per SGD step.
    lr, momentum, weight_decay, lr_decay : float
        SGD settings; the learning rate is multiplied by ``lr_decay`` after
        each epoch (0.1 in the reference).
    hidden_channels : tuple of int
        Graph convolution sizes.
    dropout : float
        Dropout after each graph convolution.
    pivot_similarity : bool
        Give each IPS node its cosine similarity to the pivot as an extra
        input feature (an extension of L-GCN, on by default; ``False`` feeds
        the pivot-relative features only, as the reference).
    metric : {"cosine", "l2"}
        kNN metric.
    n_neighbors : int, optional
        Width of the kNN table; by default what ``k_at_hop``,
        ``active_connection`` and the sampler's pool need.
    knn_backend : str
        Backend of :func:`linkage_gcn.knn.knn`.
    pool : {"mean", "max"}
        How the two directed scores of a pair are combined.
    merge : {"threshold", "propagation"}
        ``"threshold"``: connected components of the links scoring at least
        ``threshold``. ``"propagation"``: the reference pseudo-label
        propagation with ``max_size`` and ``step``.
    threshold : float or "auto"
        Link threshold of ``merge="threshold"``. ``"auto"`` picks, at fit
        time, the threshold that maximises B-Cubed F on the training set
        (test labels are never needed).
    max_size, step : int, float
        Parameters of ``merge="propagation"`` (reference: 900, 0.6).
    inference_batch_size : int
        Pivots per batch when scoring links (bounds memory).
    device : {"auto", "cpu", "cuda"} or torch.device
        Where to compute.
    random_state : int, RandomState or None
        Seeds weight initialisation, pivot order and sampling (the global
        torch random state is left untouched).
    verbose : bool, optional
        Progress bars (``None``: on a terminal for long work).

    Attributes
    ----------
    model_ : LinkageGCN
        The trained network (on the CPU between calls).
    threshold_ : float
        The link threshold used by ``merge="threshold"``.
    labels_ : numpy.ndarray of shape (n_samples,)
        Clusters of the training set, predicted with the fitted model.
    history_ : list of dict
        Per-epoch training statistics (loss, link precision/recall, time).
    n_features_in_ : int
        Feature dimension seen in ``fit``.

    Notes
    -----
    The reference settings of L-GCN are ``k_at_hop=(200, 10),
    active_connection=10`` to train and ``(20, 5), 5`` or ``(80, 5), 5`` to
    test, ``merge="propagation", max_size=900, step=0.6``; the defaults here
    are lighter (they train in minutes on a 2-core CPU for ~10K faces) and
    calibrate the merge threshold on the training data, since the reference
    propagation collapses poorly calibrated scores into singletons.

    Examples
    --------
    >>> from linkage_gcn import LinkageClusterer
    >>> from linkage_gcn.datasets import make_identities
    >>> X, y = make_identities(60, random_state=0)
    >>> clusterer = LinkageClusterer(k_at_hop=(8, 4), active_connection=4, epochs=1,
    ...                              hidden_channels=(32, 32), random_state=0)
    >>> labels = clusterer.fit(X, y).predict(X[:200])
    >>> labels.shape
    (200,)
    """

    def __init__(
        self,
        k_at_hop: tuple[int, int] = (20, 5),
        active_connection: int = 5,
        sampler: Union[str, NeighborSampler] = "riws",
        gamma: float = 2.0,
        loss: Any = "cb-graph",
        epochs: int = 4,
        batch_size: int = 16,
        lr: float = 0.01,
        momentum: float = 0.9,
        weight_decay: float = 1e-4,
        lr_decay: float = 0.5,
        hidden_channels: tuple[int, ...] = (512, 512, 256, 256),
        dropout: float = 0.0,
        pivot_similarity: bool = True,
        metric: str = "cosine",
        n_neighbors: Optional[int] = None,
        knn_backend: str = "auto",
        pool: str = "mean",
        merge: str = "threshold",
        threshold: Union[float, str] = "auto",
        max_size: int = 900,
        step: float = 0.6,
        inference_batch_size: int = 256,
        device: Any = "auto",
        random_state: Any = None,
        verbose: Optional[bool] = None,
    ) -> None:
        self.k_at_hop = k_at_hop
        self.active_connection = active_connection
        self.sampler = sampler
        self.gamma = gamma
        self.loss = loss
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.lr_decay = lr_decay
        self.hidden_channels = hidden_channels
        self.dropout = dropout
        self.pivot_similarity = pivot_similarity
        self.metric = metric
        self.n_neighbors = n_neighbors
        self.knn_backend = knn_backend
        self.pool = pool
        self.merge = merge
        self.threshold = threshold
        self.max_size = max_size
        self.step = step
        self.inference_batch_size = inference_batch_size
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ sklearn plumbing

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.input_tags.allow_nan = False
        return tags

    def _more_tags(self) -> dict[str, Any]:  # scikit-learn < 1.6
        return {"requires_y": True, "allow_nan": False}

    # ------------------------------------------------------------------ validation

    def _check_params(self) -> dict[str, Any]:
        """Validate every parameter; return the derived settings."""
        k1, k2 = check_k_at_hop(self.k_at_hop)
        cfg: dict[str, Any] = {"k1": k1, "k2": k2}
        cfg["u"] = check_int(self.active_connection, "active_connection", minimum=1)
        cfg["sampler"] = resolve_sampler(self.sampler, k1, gamma=self.gamma)
        check_real(self.gamma, "gamma", minimum=1.0)
        resolve_loss(self.loss)
        for name in ("epochs", "batch_size", "inference_batch_size"):
            check_int(getattr(self, name), name, minimum=1)
        check_real(self.lr, "lr", minimum=0.0, inclusive=False)
        check_real(self.momentum, "momentum", minimum=0.0)
        check_real(self.weight_decay, "weight_decay", minimum=0.0)
        check_real(self.lr_decay, "lr_decay", minimum=0.0, maximum=1.0)
        check_in_options(self.metric, ("cosine", "l2"), "metric")
        check_in_options(self.pool, POOLS, "pool")
        check_in_options(self.merge, MERGES, "merge")
        if not (isinstance(self.threshold, str) and self.threshold == "auto"):
            check_real(self.threshold, "threshold", minimum=0.0, maximum=1.0)
        check_real(self.step, "step", minimum=0.0, maximum=1.0)
        cfg["device"] = resolve_device(self.device)
        # training reads the sampler's pool; scoring reads the k1 nearest only
        need_fit = max(cfg["sampler"].pool_size(), k1, k2, cfg["u"])
        need_predict = max(k1, k2, cfg["u"])
        if self.n_neighbors is not None:
            n_neighbors = check_int(self.n_neighbors, "n_neighbors", minimum=1)
            if n_neighbors < need_fit:
                raise ValueError(
                    f"n_neighbors={n_neighbors} is narrower than the {need_fit} neighbours that "
                    "k_at_hop, active_connection and the sampler need."
                )
            need_fit = need_predict = n_neighbors
        cfg["n_neighbors_fit"], cfg["n_neighbors_predict"] = need_fit, need_predict
        return cfg

    def _check_X(self, X: Any, *, reset: bool, min_samples: int = 2) -> torch.Tensor:
        """Validate ``X`` with scikit-learn's rules (numpy) or ours (tensors); float32 out."""
        if not isinstance(X, torch.Tensor):
            X = check_array(
                X, accept_sparse=False, dtype=np.float32, ensure_min_samples=min_samples
            )
        x, _ = check_features(X, name="X", min_samples=min_samples, dtype=torch.float32)
        if reset:
            self.n_features_in_ = int(x.shape[1])
        elif x.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {x.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input."
            )
        return x

    # ------------------------------------------------------------------ fit / predict

    def fit(self, X: Any, y: Any = None, knn_index: Any = None) -> LinkageClusterer:
        """Train the link classifier on labelled embeddings.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Embeddings.
        y : array-like of shape (n_samples,)
            Identity labels (at least two identities).
        knn_index : array-like of shape (n_samples, K), optional
            A precomputed kNN table (neighbour ids by decreasing similarity,
            self excluded; see :func:`linkage_gcn.io.load_knn`); computed
            from ``X`` when omitted.

        Returns
        -------
        self
        """
        cfg = self._check_params()
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None: "
                "fit(X, y) learns from identity labels; to cluster unlabelled data, call "
                "predict(X) on a fitted model."
            )
        x = self._check_X(X, reset=True)
        labels = _encode_labels(y, x.shape[0])
        if np.unique(labels).shape[0] < 2:
            raise ValueError("y holds a single identity; link prediction needs at least two.")
        pool = cfg["sampler"].pool_size()
        if cfg["sampler"].needs_labels and x.shape[0] <= pool:
            raise ValueError(
                f"X has {x.shape[0]} samples, too few for {cfg['sampler']!r}, which draws from "
                f"the {pool} nearest neighbours of each sample; use a smaller k_at_hop[0] or "
                "gamma, or sampler='topk'."
            )
        device = cfg["device"]
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        generator = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = self._build_model(x.shape[1])
        model = model.to(device)
        x_dev = x.to(device)
        index = self._knn(x_dev, cfg["n_neighbors_fit"], knn_index)
        y_dev = torch.tensor(labels, device=device)
        history = train_linkage_gcn(
            model, x_dev, index, y_dev,
            sampler=cfg["sampler"], k2=cfg["k2"], active_connection=cfg["u"],
            loss=self.loss, epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
            momentum=self.momentum, weight_decay=self.weight_decay, lr_decay=self.lr_decay,
            generator=generator, verbose=self.verbose,
            pivot_similarity=self.pivot_similarity,
        )  # fmt: skip
        self.history_ = [vars(h) for h in history]
        self.model_ = model.cpu().eval()
        edge_index, scores = self._edges(x_dev, index, cfg)
        self.threshold_ = self._calibrate(edge_index, scores, labels)
        self.labels_ = self._merge(edge_index, scores, x.shape[0])
        return self

    def fit_predict(self, X: Any, y: Any = None, knn_index: Any = None) -> np.ndarray:
        """Fit on labelled ``X`` and return its clusters as predicted by the model."""
        return self.fit(X, y, knn_index=knn_index).labels_

    def predict(self, X: Any, knn_index: Any = None) -> np.ndarray:
        """Cluster a new set of embeddings.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        knn_index : array-like of shape (n_samples, K), optional
            A precomputed kNN table of ``X`` (self excluded).

        Returns
        -------
        labels : numpy.ndarray of int64, shape (n_samples,)
            Cluster ids ``0..C-1``; an item linked to nothing is a singleton.
        """
        check_is_fitted(self, "model_")
        if _n_rows(X) == 1:  # one item: one singleton cluster
            self._check_X(X, reset=False, min_samples=1)
            return np.zeros(1, dtype=np.int64)
        edge_index, scores = self.predict_edges(X, knn_index=knn_index)
        return self._merge(edge_index, scores, _n_rows(X))

    def predict_edges(self, X: Any, knn_index: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Score the links between each item and its ``k1`` nearest neighbours.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        knn_index : array-like of shape (n_samples, K), optional
            A precomputed kNN table of ``X`` (self excluded).

        Returns
        -------
        edge_index : numpy.ndarray of shape (2, n_edges)
            Unordered pairs ``i < j``.
        scores : numpy.ndarray of shape (n_edges,)
            Link probabilities, pooled over both directions (``pool``).
        """
        check_is_fitted(self, "model_")
        cfg = self._check_params()
        x = self._check_X(X, reset=False).to(cfg["device"])
        return self._edges(x, self._knn(x, cfg["n_neighbors_predict"], knn_index), cfg)

    # ------------------------------------------------------------------ steps

    def _build_model(self, n_features: int) -> LinkageGCN:
        return LinkageGCN(
            n_features + int(bool(self.pivot_similarity)),
            hidden_channels=tuple(self.hidden_channels),
            dropout=self.dropout,
        )

    def _knn(self, x: torch.Tensor, width: int, given: Any = None) -> torch.Tensor:
        k = min(width, x.shape[0] - 1)
        if given is None:
            index, _ = knn(x, k, metric=self.metric, backend=self.knn_backend, verbose=self.verbose)
            return index
        index, _ = as_tensor(given, name="knn_index", dtype=torch.long)
        index = check_knn_index(index.to(x.device), x.shape[0])
        if index.shape[1] < k:
            raise ValueError(
                f"knn_index has {index.shape[1]} neighbours per row but {k} are needed "
                "(k_at_hop, active_connection and, to fit, the sampler's pool); pass a wider "
                "table."
            )
        return index

    def _edges(self, x: torch.Tensor, index: torch.Tensor, cfg: dict[str, Any]):
        model = self.model_.to(x.device)
        try:
            src, dst, scores = predict_links(
                model, x, index, k1=cfg["k1"], k2=cfg["k2"], active_connection=cfg["u"],
                batch_size=self.inference_batch_size, verbose=self.verbose,
                pivot_similarity=self.pivot_similarity,
            )  # fmt: skip
        finally:
            self.model_ = model.cpu()
        edge_index, pooled = pool_pair_scores(
            src, dst, scores, num_nodes=x.shape[0], pool=self.pool
        )
        return edge_index.cpu().numpy(), pooled.cpu().numpy()

    def _calibrate(self, edge_index: np.ndarray, scores: np.ndarray, labels: np.ndarray) -> float:
        if not (isinstance(self.threshold, str) and self.threshold == "auto"):
            return float(self.threshold)
        n = labels.shape[0]
        fscores = [
            bcubed_fscore(labels, threshold_components(edge_index, scores, n, th))[2]
            for th in _GRID
        ]
        return float(_GRID[int(np.argmax(fscores))])

    def cluster_edges(self, edge_index: Any, scores: Any, n_samples: int) -> np.ndarray:
        """Merge scored links into clusters with this clusterer's merge settings.

        Use it to cluster the output of :meth:`predict_edges` (e.g. after
        inspecting or editing the scores) without scoring again.

        Parameters
        ----------
        edge_index : array-like of shape (2, n_edges)
            Pairs of items.
        scores : array-like of shape (n_edges,)
            Link probabilities.
        n_samples : int
            Number of items; items in no pair become singletons.

        Returns
        -------
        labels : numpy.ndarray of int64, shape (n_samples,)
        """
        check_is_fitted(self, "model_")
        check_in_options(self.merge, MERGES, "merge")
        return self._merge(edge_index, scores, n_samples)

    def _merge(self, edge_index: np.ndarray, scores: np.ndarray, n: int) -> np.ndarray:
        if self.merge == "threshold":
            return threshold_components(edge_index, scores, n, self.threshold_)
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            return propagate_labels(edge_index, scores, n, max_size=self.max_size, step=self.step)

    # ------------------------------------------------------------------ persistence

    def save(self, path: Union[str, Path], *, overwrite: bool = False) -> Path:
        """Save the fitted clusterer (parameters, weights, calibration) to one file.

        Refuses to replace an existing file unless ``overwrite=True``; the
        file is written atomically.
        """
        check_is_fitted(self, "model_")
        state = {
            "format": _FORMAT,
            "version": __version__,
            "params": self.get_params(deep=False),
            "state_dict": self.model_.state_dict(),
            "n_features_in_": self.n_features_in_,
            "threshold_": self.threshold_,
            "history_": self.history_,
            "labels_": torch.from_numpy(self.labels_),
        }
        buffer = _io.BytesIO()
        torch.save(state, buffer)
        return atomic_write(path, lambda f: f.write(buffer.getvalue()), overwrite=overwrite)

    @classmethod
    def load(cls, path: Union[str, Path], *, trusted: bool = False) -> LinkageClusterer:
        """Load a clusterer written by :meth:`save`.

        Parameters
        ----------
        path : str or Path
            The checkpoint.
        trusted : bool
            Allow unpickling arbitrary objects (needed only when a custom
            sampler or loss object was saved); never do this for files of
            unknown origin.
        """
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"{p}: no such checkpoint file.")
        try:
            state = torch.load(p, map_location="cpu", weights_only=not trusted)
        except Exception as exc:
            raise ValueError(
                f"{p} could not be read as a linkage-gcn checkpoint ({exc.__class__.__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''}). If it holds a custom sampler "
                "or loss object and you trust it, pass trusted=True."
            ) from exc
        if not isinstance(state, dict) or state.get("format") != _FORMAT:
            raise ValueError(f"{p} is not a linkage-gcn checkpoint.")
        est = cls(**state["params"])
        est.n_features_in_ = int(state["n_features_in_"])
        est.model_ = est._build_model(est.n_features_in_)
        est.model_.load_state_dict(state["state_dict"])
        est.model_.eval()
        est.threshold_ = float(state["threshold_"])
        est.history_ = list(state["history_"])
        est.labels_ = state["labels_"].numpy()
        return est

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "model_")


def _n_rows(X: Any) -> int:
    shape = getattr(X, "shape", None)
    return int(shape[0]) if shape is not None and len(shape) > 0 else len(X)


def _encode_labels(y: Any, n_samples: int) -> np.ndarray:
    """Identity labels as int64; strings and other hashable ids are encoded."""
    if isinstance(y, torch.Tensor):
        return check_labels(y, n_samples=n_samples, name="y")
    arr = np.asarray(y)
    if arr.dtype.kind in "OUS":
        arr = arr.reshape(-1) if arr.ndim == 2 and arr.shape[1] == 1 else arr
        try:
            arr = np.unique(arr, return_inverse=True)[1].reshape(arr.shape)
        except TypeError as exc:
            raise ValueError(
                "Unknown label type: y must hold identity labels of one comparable type "
                "(integers or strings)."
            ) from exc
    return check_labels(arr, n_samples=n_samples, name="y")
