"""``LinkageClusterer``: the whole L-GCN pipeline behind an sklearn-like estimator."""

from __future__ import annotations

import copy
import functools
import logging
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Optional, Union

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array, check_is_fitted

from ._archive import as_path, read_checkpoint, write_checkpoint
from ._int8 import check_int8
from ._params import check_param, skip_validation
from ._threads import with_threads
from ._validation import check_features, check_int, check_labels, check_real
from .cascade import MIN_NODES as CASCADE_MIN_NODES
from .cascade import Cascade, CascadeView, fit_cascade
from .knn import check_knn_index, knn
from .merge import attach_clusters, join_clusters, pool_pair_scores
from .merges import resolve_merge
from .metrics import bcubed_fscore
from .model_selection import identity_folds
from .nn import LinkageGCN, check_layer_sizes
from .preprocessing import apply_preprocessing, fit_preprocessing
from .samplers import Hop1Sampler, resolve_sampler
from .structure import N_STRUCTURE_FEATURES, StructureContext
from .training import predict_links, train_linkage_gcn

__all__ = ["LinkageClusterer"]

logger = logging.getLogger(__name__)

#: Link cuts tried first when ``threshold="auto"`` (then a finer grid around the best).
_COARSE_GRID = np.round(np.arange(0.1, 0.95, 0.1), 4)

#: Successive self-training clusterings agreeing this much (B-Cubed F) end the rounds.
_SELF_TRAINING_AGREEMENT = 0.995

#: Cluster cuts tried when ``join_threshold="auto"`` (``None``: no join).
_JOIN_GRID = (None, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
#: Piece cuts tried when ``attach_threshold="auto"`` (``None``: no attachment).
_ATTACH_GRID = (None, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


#: Run an estimator method with the estimator's ``threads`` CPU threads.
_with_threads = with_threads(lambda est: check_param("threads", est.threads))


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
    sampler : {"riws", "rs", "topk"} or Hop1Sampler
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
        the pivot-relative features only, as the reference). Not used with
        ``features="structure"``, whose features hold the pivot similarity.
    features : {"embedding", "structure"}
        What the network sees of each pair (pivot, node).
        ``"embedding"`` (default): the pivot-relative coordinates
        ``x_v - x_p`` of L-GCN, which tie a model to the face model it was
        trained on (and to its dimension). ``"structure"``: features that
        mean the same in every embedding space (similarity standardised
        against the collection's own random pairs and against each end's
        neighbourhood, reciprocal ranks, kNN-list overlap, local density; see
        :mod:`linkage_gcn.structure`): the model then takes embeddings of any
        dimension from any face model, standardised on each collection it
        clusters, with no labels (``metric="cosine"``, preprocessing
        ``"none"`` or ``"l2"``).
    preprocessing : {"none", "l2", "center-l2"}
        What is done to the embeddings before anything else, at fit and
        predict time alike: nothing (raw descriptors, e.g. dlib's, as the
        embedder returns them), L2 normalisation, or centring on the training
        mean (fitted, saved with the model) then L2 normalisation. See
        :mod:`linkage_gcn.preprocessing`.
    metric : {"cosine", "l2"}
        kNN metric.
    n_neighbors : int, optional
        Width of the kNN table; by default what ``k_at_hop``,
        ``active_connection`` and the sampler's pool need.
    knn_backend : str
        Backend of :func:`linkage_gcn.knn.knn`.
    pool : {"mean", "max"}
        How the two directed scores of a pair are combined.
    merge : {"chinese-whispers", "threshold", "infomap", "propagation"}
        How scored links become clusters. ``"chinese-whispers"``: the links
        scoring at least ``threshold``, weighted by their scores, clustered by
        Chinese whispers, ``merge_runs`` runs voting
        (:func:`~linkage_gcn.community.consensus_chinese_whispers`).
        ``"threshold"``: connected components of the links scoring at least
        ``threshold``. ``"infomap"``: the map equation on the same weighted
        links (the optional ``infomap`` package, GPL-3.0:
        ``pip install "linkage-gcn[infomap]"``). ``"propagation"``: the
        reference pseudo-label propagation with ``max_size`` and ``step``.
    threshold : float or "auto"
        Link cut of the ``"chinese-whispers"``, ``"threshold"`` and
        ``"infomap"`` merges. ``"auto"`` picks at fit time the cut that
        maximises B-Cubed F of the merge on training identities (test labels
        are never needed), see ``calibration``.
    join_threshold : float, "auto" or None
        A second cut, on clusters (:func:`~linkage_gcn.merge.join_clusters`):
        after the merge, two clusters are joined when the scored links between
        them average at least ``join_threshold`` and number at least as many as
        the smaller cluster has members. It mends the people that a high link
        cut splits into pieces (the largest identities), without lowering the
        cut for everyone. ``None`` (default): no join. ``"auto"``: chosen at
        fit time with the link cut, on the same labelled scores (``None``
        among the candidates), see ``calibration``; the links of people the
        model has seen rarely split, so ``calibration="cv"`` is where it
        pays.
    attach_threshold : float, "auto" or None
        A third cut, on pieces (:func:`~linkage_gcn.merge.attach_clusters`):
        after the join, a cluster is attached to the larger cluster that
        holds at least half of the scored links leaving it, when those links
        average at least ``attach_threshold``. It takes a person's odd photos
        (singletons and small pieces whose links nearly all lead into the
        person's main cluster) into that cluster. ``None`` (default): no
        attachment. ``"auto"``: chosen at fit time with the other two cuts
        (``None`` among the candidates), see ``calibration``.
    teacher : str, LinkageClusterer or None
        ``fit(X)`` without labels (self-training): the model whose clusters of
        ``X`` are the first pseudo-identities, a pretrained model's name
        (default ``"face-any"``, which takes any face model's embeddings) or
        a fitted clusterer (saved as ``None``: a saved model keeps what it
        learned, not its teacher). Not used when ``y`` is given; ``None``:
        ``fit`` needs ``y``.
    max_rounds : int
        Self-training rounds of ``fit(X)`` without labels at most: each
        trains on the clusters of the round before (the teacher's, then its
        own); it stops earlier when a round no longer changes the clusters.
        One by default: later rounds learn the previous round's mistakes as
        well as its clusters (docs/any_face.md has the figures).
    calibration : {"train", "cv"}
        Where ``"auto"`` cuts (``threshold``, ``join_threshold``,
        ``attach_threshold``) are chosen. ``"train"`` (default) picks them
        on the final model's scores of its own training set: the cuts follow
        that model's own score scale, which varies between training runs.
        ``"cv"`` trains ``cv_folds`` more models on identity-disjoint folds of
        the training set and picks the cut on the links of the people each
        did not see (how a model scores new people), then applies it to the
        final model trained on everything; it costs ``cv_folds`` more
        trainings (docs/results.md compares the two on LFW).
    cv_folds : int
        Identity-disjoint folds of ``calibration="cv"`` (>= 2).
    cv_family : int, optional
        With ``calibration="cv"``, also score the people of each held-out
        fold (of each collection) who have at least ``cv_family`` faces there
        as a collection of their own: a family library's shape (a few people,
        many photos each, no strangers), beside the long tail of the fold.
        The cuts are then chosen on the mean B-Cubed F over both shapes, so
        that one setting serves both. ``None`` (default): the folds as they
        are.
    cv_sizes : tuple of float, optional
        With ``calibration="cv"``, also score random subsamples of each
        held-out fold holding these fractions of its rows (of each
        collection; e.g. ``(0.25, 0.5)``), as collections of their own: the
        same people, fewer photos of each and more people with one. Smaller
        collections want a higher link cut, and the cuts are then chosen on
        the mean B-Cubed F over every size. ``None`` (default): the folds at
        their own size.
    cascade : bool
        Score with the GCN only the links a cheap link prior is unsure of
        (:mod:`linkage_gcn.cascade`): ``fit`` learns the prior from the
        GCN's scores of half the training identities and chooses, on the
        other half, the band of prior scores left to the GCN (the widest
        that moves B-Cubed F by at most 0.0005); ``predict`` then scores
        with the GCN only the pivots with a link in that band. ``False``:
        every link is scored by the GCN (and ``fit`` fits no prior). Sets of
        fewer than 500 items are always scored by the GCN alone.
    merge_runs : int
        Chinese-whispers runs that vote (``"chinese-whispers"``), or Infomap
        trials (``"infomap"``).
    max_size, step : int, float
        Parameters of ``merge="propagation"`` (reference: 900, 0.6).
    inference_batch_size : int, optional
        Pivots per batch when scoring links (bounds memory); by default a
        size measured fastest for the device and ``k_at_hop``
        (:func:`~linkage_gcn.training.default_inference_batch_size`).
    precision : {"fp32", "bf16", "tf32", "int8"}
        Arithmetic of link scoring at predict time. ``"fp32"`` (default) is
        exact; ``"bf16"`` (GPUs, CPUs with native bfloat16), ``"tf32"``
        (CUDA matrix products) and ``"int8"`` (CPU only: oneDNN int8
        products) are faster where the hardware has them and move link
        scores slightly (``docs/scaling.md`` has the measured speed and
        agreement).
    device : {"auto", "cpu", "cuda"} or torch.device
        Where to compute. Under ``torchrun`` (an initialised
        ``torch.distributed`` process group), the training of ``fit`` shards
        its pivots across the processes (``batch_size`` per process) and so
        does the scoring: :func:`~linkage_gcn.training.train_linkage_gcn` and
        :func:`~linkage_gcn.training.predict_links` serve one process or many.
    threads : int, "auto" or None
        CPU threads of torch (and faiss) during ``fit`` and ``predict``,
        restored afterwards. ``"auto"`` (default): the CPUs this process may
        use less those other processes keep busy, at least one, unless the
        count was chosen elsewhere (``OMP_NUM_THREADS``,
        ``torch.set_num_threads``; see
        :func:`~linkage_gcn._threads.default_threads`); ``None`` keeps
        torch's setting (one thread per core). A machine setting: a saved
        model does not carry it.
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
        The link threshold chosen at fit time (``threshold`` itself, or the
        calibrated one for ``"auto"``); a threshold set later with
        ``set_params`` takes precedence at predict time.
    join_threshold_ : float or None
        The cluster cut chosen at fit time (``join_threshold`` itself, or the
        calibrated one for ``"auto"``; ``None``: no join), read as
        ``threshold_`` is.
    attach_threshold_ : float or None
        The piece cut chosen at fit time, as ``join_threshold_``.
    labels_ : numpy.ndarray of shape (n_samples,)
        Clusters of the training set, predicted with the fitted model.
    history_ : list of dict
        Per-epoch training statistics (loss, link precision/recall, time).
    n_features_in_ : int
        Feature dimension seen in ``fit``.
    self_training_ : list of dict
        The rounds of a self-training ``fit(X)`` without labels (the number of
        pseudo-identities, the agreement with the round before, the cuts
        chosen, seconds); empty after a fit with labels.
    cascade_ : Cascade or None
        The link prior and its band (:class:`~linkage_gcn.cascade.Cascade`),
        with the share of held-out training pivots it decided; ``None`` when
        ``cascade=False`` or the training set is too small to choose a band.
    preprocessing_mean_ : numpy.ndarray of shape (n_features,) or None
        The training mean subtracted by ``preprocessing="center-l2"``.

    Notes
    -----
    The reference settings of L-GCN are ``k_at_hop=(200, 10),
    active_connection=10`` to train and ``(20, 5), 5`` or ``(80, 5), 5`` to
    test, ``merge="propagation", max_size=900, step=0.6``; the defaults here
    are lighter (``docs/scaling.md`` has their training times) and
    calibrate the merge threshold on the training data, since the reference
    propagation collapses poorly calibrated scores into singletons.

    Examples
    --------
    >>> from linkage_gcn import LinkageClusterer
    >>> from linkage_gcn.datasets import make_identities
    >>> X, y = make_identities(20, random_state=0)
    >>> clusterer = LinkageClusterer(k_at_hop=(4, 2), active_connection=2, epochs=1,
    ...                              hidden_channels=(16,), random_state=0)
    >>> labels = clusterer.fit(X, y).predict(X[:30])
    >>> labels.shape
    (30,)
    """

    def __init__(
        self,
        k_at_hop: tuple[int, int] = (20, 5),
        active_connection: int = 5,
        sampler: Union[str, Hop1Sampler] = "riws",
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
        features: str = "embedding",
        preprocessing: str = "none",
        metric: str = "cosine",
        n_neighbors: Optional[int] = None,
        knn_backend: str = "auto",
        pool: str = "mean",
        merge: str = "chinese-whispers",
        threshold: Union[float, str] = "auto",
        join_threshold: Union[float, str, None] = None,
        attach_threshold: Union[float, str, None] = None,
        teacher: Any = "face-any",
        max_rounds: int = 1,
        calibration: str = "train",
        cv_folds: int = 3,
        cv_family: Optional[int] = None,
        cv_sizes: Optional[tuple[float, ...]] = None,
        cascade: bool = True,
        merge_runs: int = 5,
        max_size: int = 900,
        step: float = 0.6,
        inference_batch_size: Optional[int] = None,
        precision: str = "fp32",
        device: Any = "auto",
        threads: Union[int, str, None] = "auto",
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
        self.features = features
        self.preprocessing = preprocessing
        self.metric = metric
        self.n_neighbors = n_neighbors
        self.knn_backend = knn_backend
        self.pool = pool
        self.merge = merge
        self.threshold = threshold
        self.join_threshold = join_threshold
        self.attach_threshold = attach_threshold
        self.teacher = teacher
        self.max_rounds = max_rounds
        self.calibration = calibration
        self.cv_folds = cv_folds
        self.cv_family = cv_family
        self.cv_sizes = cv_sizes
        self.cascade = cascade
        self.merge_runs = merge_runs
        self.max_size = max_size
        self.step = step
        self.inference_batch_size = inference_batch_size
        self.precision = precision
        self.device = device
        self.threads = threads
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

    def resolved_params(self) -> dict[str, Any]:
        """Validate every parameter, before any work; return the validated settings.

        Each parameter is checked by its one declaration in
        :data:`linkage_gcn._params.PARAMS`; the rules that tie several
        parameters together follow. The merge's optional package (``infomap``)
        is checked here too, so that a missing extra fails before any work.

        Returns
        -------
        dict
            Each parameter name mapped to its validated value (``device`` as a
            :class:`torch.device`), plus ``k1``, ``k2``, the resolved
            ``sampler`` and the kNN widths ``n_neighbors_fit`` /
            ``n_neighbors_predict``.

        Raises
        ------
        ValueError
            Naming the parameter and the problem.

        Examples
        --------
        >>> cfg = LinkageClusterer(k_at_hop=(10, 5)).resolved_params()
        >>> cfg["k1"], cfg["k2"], cfg["n_neighbors_predict"]
        (10, 5, 10)
        """
        cfg: dict[str, Any] = {
            name: check_param(name, getattr(self, name)) for name in self._get_param_names()
        }
        cfg["k1"], cfg["k2"] = cfg["k_at_hop"]
        resolve_merge(cfg["merge"])  # its optional package, before any work
        cfg["sampler_param"] = self.sampler
        cfg["sampler"] = resolve_sampler(self.sampler, cfg["k1"], gamma=cfg["gamma"])
        cfg.update(_knn_widths(cfg))
        if cfg["features"] == "structure":
            _check_structure_settings(cfg)
        elif cfg["precision"] == "int8":
            check_int8(cfg["device"])
        return cfg

    def _check_X(self, X: Any, *, reset: bool, min_samples: int = 2) -> torch.Tensor:
        """Validate ``X`` with scikit-learn's rules (numpy) or ours (tensors); float32 out."""
        if X is None:
            raise ValueError(
                f"X is None; {type(self).__name__} needs embeddings, an array of shape "
                "(n_samples, n_features)."
            )
        if not isinstance(X, torch.Tensor):
            X = check_array(
                X, accept_sparse=False, dtype=np.float32, ensure_min_samples=min_samples
            )
        x, _ = check_features(X, name="X", min_samples=min_samples, dtype=torch.float32)
        if reset:
            self.n_features_in_ = int(x.shape[1])
        elif x.shape[1] != self.n_features_in_ and self.features != "structure":
            raise ValueError(
                f"X has {x.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input (a features='embedding' model "
                "takes the embeddings of the face model it was trained on; "
                "LinkageClusterer.pretrained('face-any') takes any face model's)."
            )
        return x

    def _prepare(
        self, X: Any, cfg: dict[str, Any], *, reset: bool, min_samples: int = 2
    ) -> torch.Tensor:
        """Validate ``X`` and apply the preprocessing (fitting its state when ``reset``)."""
        x = self._check_X(X, reset=reset, min_samples=min_samples)
        method = cfg["preprocessing"]
        if reset:
            mean = fit_preprocessing(x, method)
            self.preprocessing_mean_ = None if mean is None else mean.numpy()
        mean = getattr(self, "preprocessing_mean_", None)
        mean = None if mean is None else torch.from_numpy(np.asarray(mean, dtype=np.float32))
        return apply_preprocessing(x, method, mean)

    def preprocess(self, X: Any) -> np.ndarray:
        """Validate new embeddings and apply the fitted preprocessing, as :meth:`predict` does.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Embeddings with the ``n_features_in_`` columns seen in ``fit``.

        Returns
        -------
        numpy.ndarray of float32, shape (n_samples, n_features)
            What the kNN search and the link model see.

        Examples
        --------
        >>> est = LinkageClusterer.pretrained("dlib-128")
        >>> est.preprocess(np.ones((2, 128))).shape
        (2, 128)
        """
        check_is_fitted(self, "model_")
        return self._prepare(X, self.resolved_params(), reset=False, min_samples=1).numpy()

    # ------------------------------------------------------------------ fit / predict

    @_with_threads
    def fit(
        self,
        X: Any,
        y: Any = None,
        knn_index: Any = None,
        *,
        resume: Any = None,
        collections: Any = None,
    ) -> LinkageClusterer:
        """Train the link classifier on labelled embeddings, or on ``X`` alone.

        Every parameter and input is validated before the kNN search and the
        training start. Without ``y`` the clusterer teaches itself
        (self-training): ``teacher`` clusters ``X`` (a high-precision
        clustering: its cuts were chosen on people it had not seen), its
        clusters are the pseudo-identities the network is trained on (with
        the configured sampler, RIWS by default), and the cuts of ``"auto"``
        are chosen so that the new model's clusters agree best (B-Cubed F)
        with the teacher's; then the new model is the teacher of the next
        round, up to ``max_rounds``, stopping when a round's clusters agree
        with the previous round's at B-Cubed F 0.995 or more. No label is
        read; ``self_training_`` records the rounds.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Embeddings.
        y : array-like of shape (n_samples,), optional
            Identity labels (at least two identities): integers, whole
            floats, strings or other comparable ids. ``None``: self-training
            from ``teacher``, as above.
        knn_index : array-like of shape (n_samples, K), optional
            A precomputed kNN table (neighbour ids by decreasing similarity,
            self excluded; see :func:`linkage_gcn.io.load_knn`); computed
            from ``X`` when omitted.
        resume : str or Path, optional
            A resume file for a long training: after each finished epoch the
            training state is saved there, and a fit that was interrupted
            (Ctrl-C, a lost machine) and is started again with the same data,
            parameters and file continues after the last finished epoch. The
            file is removed when the training ends.
        collections : array-like of shape (n_samples,), optional
            Train on several labelled sets at once (faces of several face
            models, of several photo libraries): the collection of each row.
            Rows of different collections are never neighbours, each is
            standardised on its own (``features="structure"``), and the cut
            of ``threshold="auto"`` maximises the mean B-Cubed F over the
            collections. Rows of one collection need not be contiguous.
            With ``knn_index``, no row may name another collection's row.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            On a bad parameter or input (named in the message).
        FloatingPointError
            When the training diverges (NaN or infinite loss): lower ``lr``
            or change ``loss``.
        """
        cfg = self.resolved_params()
        x = self._prepare(X, cfg, reset=True)
        if y is None:
            return self._self_train(X, x, knn_index, cfg, resume, collections)
        labels = check_labels(y, n_samples=x.shape[0], name="y", encode=True)
        if np.unique(labels).shape[0] < 2:
            raise ValueError("y holds a single identity; link prediction needs at least two.")
        self.self_training_ = []
        return self._fit_labels(x, labels, knn_index, cfg, resume=resume, collections=collections)

    @_with_threads
    def fit_cascade(
        self, X: Any, y: Any, knn_index: Any = None, *, collections: Any = None
    ) -> LinkageClusterer:
        """Fit the scoring cascade of a fitted model on labelled embeddings (the GCN is kept).

        What ``fit`` does after training when ``cascade=True``, for a model
        trained without it or loaded from an older checkpoint: the GCN scores
        every link of ``X``, a link prior learns those scores on half the
        identities, and the band left to the GCN is chosen on the other half
        (:func:`~linkage_gcn.cascade.fit_cascade`). Use the data the model was
        trained on, or other data of the same kind.

        Parameters
        ----------
        X, y, knn_index, collections
            As :meth:`fit` (``y`` is required).

        Returns
        -------
        self
            With ``cascade_`` (``None`` when no band could be chosen).
        """
        check_is_fitted(self, "model_")
        cfg = self.resolved_params()
        x = self._prepare(X, cfg, reset=False)
        labels = check_labels(y, n_samples=x.shape[0], name="y", encode=True)
        groups = _check_collections(collections, x.shape[0])
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        x_dev = x.to(cfg["device"])
        index = self._knn(x_dev, cfg["n_neighbors_predict"], knn_index, collections=groups)
        with skip_validation():
            inputs = self._link_inputs(x_dev, index, cfg, groups)
            self.cascade_ = None
            _, _, directed = self._edges(x_dev, index, cfg, inputs, directed=True)
            self.cascade_ = self._fit_cascade(x_dev, index, labels, cfg, inputs, groups,
                                              directed, seed)  # fmt: skip
        return self

    def _self_train(
        self, X: Any, x: torch.Tensor, knn_index: Any, cfg: dict[str, Any], resume: Any,
        collections: Any,
    ) -> LinkageClusterer:  # fmt: skip
        """``fit(X)`` without labels: rounds of training on a teacher's clusters."""
        if collections is not None:
            raise ValueError(
                "fit(X) without labels takes one collection: collections= needs y (fit each "
                "collection on its own)."
            )
        if resume is not None:
            raise ValueError("resume= needs y: a self-training fit is not resumable.")
        teacher = self._teacher(cfg, x.shape[1])
        rounds: list[dict[str, Any]] = []
        previous = None
        for r in range(cfg["max_rounds"]):
            start = time.perf_counter()
            edge_index, scores = teacher.predict_edges(X, knn_index)
            n = x.shape[0]
            # the teacher's clusters, cluster join included: its pre-join clusters split the
            # largest people, and a student trained on the split learns it (docs/any_face.md)
            pseudo = teacher.cluster_edges(edge_index, scores, n)
            agreement = None if previous is None else float(bcubed_fscore(previous, pseudo)[2])
            if agreement is not None and agreement >= _SELF_TRAINING_AGREEMENT:
                logger.info("self-training: round %d changed nothing (agreement %.4f): stop",
                            r + 1, agreement)  # fmt: skip
                break
            n_pseudo = int(np.unique(pseudo).shape[0])
            if n_pseudo < 2 or n_pseudo == n:
                raise ValueError(
                    f"the teacher found {'one cluster' if n_pseudo < 2 else 'only singletons'} "
                    f"in X ({n} rows): there are no pseudo-identities to learn links from; "
                    "give y, or another teacher."
                )
            logger.info("self-training round %d/%d: %d pseudo-identities (the teacher's clusters)",
                        r + 1, cfg["max_rounds"], n_pseudo)  # fmt: skip
            self._fit_labels(x, pseudo, knn_index, cfg, reference=pseudo)
            rounds.append({
                "round": r + 1, "pseudo_identities": n_pseudo,
                "agreement_with_previous": agreement, "threshold": self.threshold_,
                "join_threshold": self.join_threshold_,
                "attach_threshold": self.attach_threshold_,
                "seconds": time.perf_counter() - start,
            })  # fmt: skip
            previous = pseudo
            teacher = copy.deepcopy(self)
        self.self_training_ = rounds
        return self

    def _teacher(self, cfg: dict[str, Any], width: int) -> LinkageClusterer:
        """The fitted teacher of a self-training fit, checked against ``X``'s width."""
        teacher = cfg["teacher"]
        if teacher is None:
            raise ValueError(
                "fit(X) without labels needs a teacher (teacher=None): give y, or "
                "teacher='face-any'."
            )
        if isinstance(teacher, str):
            teacher = type(self).pretrained(teacher)
        else:
            check_is_fitted(teacher, "model_")
            teacher = copy.deepcopy(teacher)  # the caller's clusterer is left as it was
        if teacher.features != "structure" and teacher.n_features_in_ != width:
            raise ValueError(
                f"X has {width} features but the teacher {cfg['teacher']!r} takes "
                f"{teacher.n_features_in_}: use teacher='face-any' (any face model's "
                "embeddings) or a teacher trained on this embedder."
            )
        return teacher.set_params(
            device=cfg["device"], threads=None, verbose=cfg["verbose"]
        )  # fmt: skip

    def _fit_labels(
        self, x: torch.Tensor, labels: np.ndarray, knn_index: Any, cfg: dict[str, Any], *,
        resume: Any = None, collections: Any = None, reference: Optional[np.ndarray] = None,
    ) -> LinkageClusterer:  # fmt: skip
        """Train on prepared rows and labels; ``reference``: the clusters the cuts follow."""
        n_ids = np.unique(labels).shape[0]
        groups = _check_collections(collections, x.shape[0])
        train_cfg = self._fit_hops(
            _smallest(groups, x.shape[0]), cfg, "X" if groups is None else "a collection"
        )
        if reference is None:
            self._check_folds(labels, cfg)
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        x_dev = x.to(cfg["device"])
        index = self._knn(x_dev, cfg["n_neighbors_fit"], knn_index, collections=groups)
        logger.info(
            "fit: %d samples, %d features, %d identities; %r, k_at_hop=%s, %d epochs on %s",
            x.shape[0], x.shape[1], n_ids, train_cfg["sampler"], train_cfg["k_at_hop"],
            cfg["epochs"], cfg["device"],
        )  # fmt: skip
        with skip_validation():  # everything below was validated above
            inputs = self._link_inputs(x_dev, index, cfg, groups)
            model, history = self._train(
                x_dev, index, labels, train_cfg, seed, resume=resume, inputs=inputs
            )
            self.history_ = [vars(h) for h in history]
            self.model_ = model.cpu().eval()
            self.cascade_ = None  # scored by the GCN alone, to learn the prior from
            edge_index, scores, directed = self._edges(x_dev, index, cfg, inputs, directed=True)
            if not _calibrated(cfg):
                # a merge that sets its own thresholds (the propagation) leaves threshold_ unused
                self.threshold_ = 0.5 if cfg["threshold"] == "auto" else float(cfg["threshold"])
                self.join_threshold_ = cfg["join_threshold"]
                self.attach_threshold_ = cfg["attach_threshold"]
            elif reference is not None:
                self.threshold_, self.join_threshold_, self.attach_threshold_ = self._calibrate(
                    [(edge_index, scores, reference)], cfg, "the teacher's clusters"
                )
            elif cfg["calibration"] == "cv":
                self.threshold_, self.join_threshold_, self.attach_threshold_ = self._calibrate_cv(
                    x, labels, cfg, seed, groups
                )
            else:
                self.threshold_, self.join_threshold_, self.attach_threshold_ = self._calibrate(
                    _split_collections(edge_index, scores, labels, groups), cfg,
                    "training set" if groups is None else f"{groups.max() + 1} collections",
                )
            self.labels_ = self._merge(edge_index, scores, x.shape[0], cfg)
            if cfg["cascade"]:
                truth = labels if reference is None else reference
                self.cascade_ = self._fit_cascade(x_dev, index, truth, cfg, inputs, groups,
                                                  directed, seed)  # fmt: skip
        return self

    def _fit_cascade(
        self, x: torch.Tensor, index: torch.Tensor, labels: np.ndarray, cfg: dict[str, Any],
        inputs: dict[str, Any], groups: Optional[np.ndarray], directed: torch.Tensor, seed: int,
    ) -> Optional[Cascade]:  # fmt: skip
        """The cascade of the fitted model: its prior and band (``None`` if it cannot be had).

        With ``cv_sizes``, random subsamples of those fractions of each
        collection are views the band must hold on too, each with its own
        kNN search, context and GCN scores (as a collection that size would
        be at predict time).
        """
        hop1 = index[:, : directed.shape[1]]
        context = self._prior_context(x, index, cfg, inputs, groups)
        views = []
        for fraction in cfg["cv_sizes"] or ():
            rows, size_groups = _size_view(
                groups, x.shape[0], fraction, cfg["k1"] + 1,
                np.random.default_rng([seed, round(fraction * 1e6)]),
            )  # fmt: skip
            if not rows.size:
                continue
            x_v = x[torch.from_numpy(rows).to(x.device)]
            index_v = self._knn(x_v, cfg["n_neighbors_predict"], collections=size_groups)
            inputs_v = self._link_inputs(x_v, index_v, cfg, size_groups)
            _, _, scores_v = self._edges(x_v, index_v, {**cfg, "cascade": False}, inputs_v,
                                         directed=True)  # fmt: skip
            hop1_v = index_v[:, : scores_v.shape[1]]
            views.append(CascadeView(
                rows, self._prior_context(x_v, index_v, cfg, inputs_v, size_groups), scores_v,
                self._cascade_evaluator(hop1_v, labels[rows], size_groups, cfg),
            ))  # fmt: skip
        start = time.perf_counter()
        cascade = fit_cascade(
            context, hop1, directed, np.asarray(labels),
            self._cascade_evaluator(hop1, labels, groups, cfg), collections=groups,
            random_state=seed, views=views,
        )  # fmt: skip
        logger.info("cascade fitted in %.1f s", time.perf_counter() - start)
        return cascade

    def _cascade_evaluator(
        self, hop1: torch.Tensor, labels: np.ndarray, groups: Optional[np.ndarray],
        cfg: dict[str, Any],
    ) -> Callable[[np.ndarray, torch.Tensor], list[float]]:  # fmt: skip
        """``evaluate(nodes, scores)``: B-Cubed F per collection of the merge at the cuts."""
        n, device = hop1.shape[0], hop1.device
        threshold, cuts = self.link_threshold(), self._cluster_cuts()
        src = torch.arange(n, device=device).repeat_interleave(hop1.shape[1])
        truth = np.asarray(labels)
        group_of = np.zeros(n, dtype=np.int64) if groups is None else groups

        def evaluate(nodes: np.ndarray, scores: torch.Tensor) -> list[float]:
            local = torch.full((n,), -1, dtype=torch.long, device=device)
            local[torch.from_numpy(nodes).to(device)] = torch.arange(nodes.size, device=device)
            a, b = local.index_select(0, src), local.index_select(0, hop1.reshape(-1))
            keep = (a >= 0) & (b >= 0)
            e, s = pool_pair_scores(a[keep], b[keep], scores.reshape(-1)[keep],
                                    num_nodes=nodes.size, pool=cfg["pool"])  # fmt: skip
            merged = self._merge_at(e.cpu().numpy(), s.cpu().numpy(), nodes.size, cfg,
                                    threshold, *cuts)  # fmt: skip
            g = group_of[nodes]
            return [bcubed_fscore(truth[nodes][g == c], merged[g == c])[2] for c in np.unique(g)]

        return evaluate

    def _prior_context(
        self, x: torch.Tensor, index: torch.Tensor, cfg: dict[str, Any],
        inputs: dict[str, Any], groups: Optional[np.ndarray] = None,
        similarity: Optional[torch.Tensor] = None,
    ) -> StructureContext:  # fmt: skip
        """The structure context the link prior reads (the model's own, or built for it)."""
        if inputs.get("structure") is not None:
            return inputs["structure"]
        collections = None if groups is None else torch.from_numpy(groups).to(x.device)
        return StructureContext.build(
            x, index, k=cfg["k1"], collections=collections, similarity=similarity
        )

    @staticmethod
    def _fit_hops(n: int, cfg: dict[str, Any], what: str) -> dict[str, Any]:
        """The settings to train on ``n`` samples: the hops shrunk to what the data holds.

        Each sample of a set of ``n`` has ``n - 1`` neighbours. When the
        sampler's pool (``k1`` for ``"topk"``, ``floor(gamma * k1)`` for
        ``"rs"`` / ``"riws"``), ``k2`` or ``active_connection`` need more, a
        sampler given by name is rebuilt with the largest ``k1`` that fits and
        the other hops are capped at ``n - 1`` (a warning says so; the network
        does not depend on the hops, and ``predict`` uses ``k_at_hop``); a
        sampler object cannot be rebuilt, and a set too small for ``k1 = 1``
        is refused, before any work.
        """
        avail = n - 1
        sampler, k1, k2, u = cfg["sampler"], cfg["k1"], cfg["k2"], cfg["active_connection"]
        if sampler.pool_size() <= avail and max(k2, u) <= avail:
            return cfg
        fix = (
            "use a smaller k_at_hop[0] or gamma, sampler='topk', or more samples"
            if sampler.needs_labels
            else "use a smaller k_at_hop[0] or more samples"
        )
        if not isinstance(cfg["sampler_param"], str):
            raise ValueError(
                f"{what} has {n} samples, so each has {avail} neighbours, too few for {sampler!r}, "
                f"which reads the {sampler.pool_size()} nearest neighbours of each sample: {fix}."
            )
        fitting = [
            k for k in range(min(k1, avail), 0, -1)
            if resolve_sampler(cfg["sampler_param"], k, gamma=cfg["gamma"]).pool_size() <= avail
        ]  # fmt: skip
        if not fitting:
            smallest = resolve_sampler(cfg["sampler_param"], 1, gamma=cfg["gamma"]).pool_size()
            raise ValueError(
                f"{what} has {n} samples, so each has {avail} neighbours: too few to train "
                f"{cfg['sampler_param']!r} even with k_at_hop[0] = 1 (its pool is "
                f"floor(gamma * k1) = {smallest} with gamma={cfg['gamma']:g}): {fix}."
            )
        new_k1 = fitting[0]
        shrunk = {
            **cfg,
            "k1": new_k1,
            "k2": min(k2, avail),
            "active_connection": min(u, avail),
            "sampler": resolve_sampler(cfg["sampler_param"], new_k1, gamma=cfg["gamma"]),
        }
        shrunk["k_at_hop"] = (new_k1, shrunk["k2"])
        changed = [
            (key, shrunk[key], cfg[key])
            for key in ("k_at_hop", "active_connection")
            if shrunk[key] != cfg[key]
        ]
        warnings.warn(
            f"{what} has {n} samples, so each has {avail} neighbours: training with "
            + " and ".join(f"{k}={new}" for k, new, _ in changed)
            + " instead of "
            + " and ".join(f"{k}={old}" for k, _, old in changed)
            + f"; predict uses k_at_hop={cfg['k_at_hop']}. Train on more samples to use the "
            "full subgraphs.",
            UserWarning,
            stacklevel=4,
        )
        return shrunk

    def _check_folds(self, labels: np.ndarray, cfg: dict[str, Any]) -> None:
        """Refuse a training set with too few identities for the calibration folds."""
        if _calibrated(cfg) and cfg["calibration"] == "cv":
            folds = cfg["cv_folds"]
            if np.unique(labels).shape[0] < 2 * folds:
                raise ValueError(
                    f"calibration='cv' with cv_folds={folds} needs at least {2 * folds} "
                    f"identities in y (two per fold), got {np.unique(labels).shape[0]}; use "
                    "fewer cv_folds, calibration='train' or a fixed threshold."
                )

    def _train(
        self,
        x: torch.Tensor,
        index: torch.Tensor,
        labels: np.ndarray,
        cfg: dict[str, Any],
        seed: int,
        resume: Any = None,
        inputs: Optional[dict[str, Any]] = None,
    ) -> tuple[LinkageGCN, list[Any]]:
        """Train a fresh network on ``x`` (seeded by ``seed``); return it and its history.

        One process or all the processes of a ``torchrun`` group alike:
        :func:`~linkage_gcn.training.train_linkage_gcn` shards the pivots.
        """
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = self._build_model(x.shape[1], cfg)
        model = model.to(x.device)
        y_dev = torch.from_numpy(labels).to(x.device)
        if inputs is None:
            inputs = self._link_inputs(x, index, cfg)
        history = train_linkage_gcn(
            model, x, index, y_dev, sampler=cfg["sampler"], k2=cfg["k2"],
            active_connection=cfg["active_connection"], loss=cfg["loss"], epochs=cfg["epochs"],
            batch_size=cfg["batch_size"], lr=cfg["lr"], momentum=cfg["momentum"],
            weight_decay=cfg["weight_decay"], lr_decay=cfg["lr_decay"], verbose=cfg["verbose"],
            seed=seed, resume=resume, **inputs,
        )  # fmt: skip
        return model, history

    def _calibrate_cv(
        self,
        x: torch.Tensor,
        labels: np.ndarray,
        cfg: dict[str, Any],
        seed: int,
        groups: Optional[np.ndarray] = None,
    ) -> tuple[float, Optional[float], Optional[float]]:
        """Choose the cuts on identity-disjoint folds, each scored by a model that never saw it."""
        folds = identity_folds(labels, cfg["cv_folds"], random_state=seed)
        scored = []
        final_model = self.model_
        try:
            for k in range(cfg["cv_folds"]):
                held = folds == k
                logger.info(
                    "calibration fold %d/%d: training on %d samples, scoring %d unseen",
                    k + 1, cfg["cv_folds"], int((~held).sum()), int(held.sum()),
                )  # fmt: skip
                x_fit = x[torch.from_numpy(~held)].to(cfg["device"])
                x_held = x[torch.from_numpy(held)].to(cfg["device"])
                fit_labels = labels[~held]
                fit_groups = _subset_groups(groups, ~held)
                held_groups = _subset_groups(groups, held)
                fold_cfg = self._fit_hops(
                    _smallest(fit_groups, x_fit.shape[0]), cfg, f"calibration fold {k + 1}"
                )
                index = self._knn(x_fit, cfg["n_neighbors_fit"], collections=fit_groups)
                inputs = self._link_inputs(x_fit, index, cfg, fit_groups)
                model, _ = self._train(
                    x_fit, index, fit_labels, fold_cfg, seed + 1 + k, inputs=inputs
                )
                self.model_ = model.cpu().eval()
                if _smallest(held_groups, x_held.shape[0]) < 2:
                    continue
                scored += self._score_held(x_held, labels[held], held_groups, cfg)
                for fraction in cfg["cv_sizes"] or ():
                    rows, size_groups = _size_view(
                        held_groups, x_held.shape[0], fraction, cfg["k1"] + 1,
                        np.random.default_rng([seed, k, round(fraction * 1e6)]),
                    )  # fmt: skip
                    if rows.size:
                        x_size = x_held[torch.from_numpy(rows).to(x_held.device)]
                        scored += self._score_held(
                            x_size, labels[held][rows], size_groups, cfg
                        )
                if cfg["cv_family"] is not None:
                    rows, family_groups = _family_view(
                        labels[held], held_groups, cfg["cv_family"], cfg["k1"] + 1
                    )
                    if rows.size:
                        x_family = x_held[torch.from_numpy(rows).to(x_held.device)]
                        scored += self._score_held(
                            x_family, labels[held][rows], family_groups, cfg
                        )
        finally:
            self.model_ = final_model
        views = [
            *(["subsamples"] if cfg["cv_sizes"] else []),
            *(["family views"] if cfg["cv_family"] is not None else []),
        ]
        where = f"{cfg['cv_folds']} identity-disjoint folds"
        if views:
            where += f" and their {' and '.join(views)} ({len(scored)} scored collections)"
        return self._calibrate(scored, cfg, where)

    def _score_held(
        self, x: torch.Tensor, labels: np.ndarray, groups: Optional[np.ndarray],
        cfg: dict[str, Any],
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:  # fmt: skip
        """Faces ``model_`` never saw, scored as at predict: each collection's links, labels."""
        index = self._knn(x, cfg["n_neighbors_predict"], collections=groups)
        edge_index, scores = self._edges(x, index, cfg, self._link_inputs(x, index, cfg, groups))
        return _split_collections(edge_index, scores, labels, groups)

    def fit_predict(self, X: Any, y: Any = None, knn_index: Any = None) -> np.ndarray:
        """Fit on labelled ``X`` and return its clusters as predicted by the model."""
        return self.fit(X, y, knn_index=knn_index).labels_

    @_with_threads
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
        cfg = self.resolved_params()
        x = self._prepare(X, cfg, reset=False, min_samples=1)
        if x.shape[0] == 1:  # one item: one singleton cluster
            return np.zeros(1, dtype=np.int64)
        edge_index, scores = self._score(x, knn_index, cfg)
        with skip_validation():
            return self._merge(edge_index, scores, x.shape[0], cfg)

    @_with_threads
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
        cfg = self.resolved_params()
        return self._score(self._prepare(X, cfg, reset=False), knn_index, cfg)

    # ------------------------------------------------------------------ steps

    def _score(self, x: torch.Tensor, knn_index: Any, cfg: dict[str, Any]):
        x = x.to(cfg["device"])
        index, similarity = self._knn_table(x, cfg["n_neighbors_predict"], knn_index)
        with skip_validation():
            return self._edges(x, index, cfg, similarity=similarity)

    def _build_model(self, n_features: int, cfg: Optional[dict[str, Any]] = None) -> LinkageGCN:
        hidden = cfg["hidden_channels"] if cfg else self.hidden_channels
        pivot_similarity = cfg["pivot_similarity"] if cfg else self.pivot_similarity
        if (cfg["features"] if cfg else self.features) == "structure":
            n_in = N_STRUCTURE_FEATURES
        else:
            n_in = n_features + int(bool(pivot_similarity))
        return LinkageGCN(
            n_in,
            hidden_channels=tuple(check_layer_sizes(hidden)),
            dropout=self.dropout,
        )

    def _link_inputs(
        self,
        x: torch.Tensor,
        index: torch.Tensor,
        cfg: dict[str, Any],
        collections: Optional[np.ndarray] = None,
        similarity: Optional[torch.Tensor] = None,
    ) -> dict[str, Any]:
        """What the link model reads besides the graph: ``pivot_similarity`` and ``structure``.

        The structure features (``features="structure"``) are built from this
        collection itself, at fit and predict time alike: its random pairs,
        its kNN lists of ``k1`` (the same width at both times), their cosines
        ``similarity`` when the search gave them.
        """
        if cfg["features"] != "structure":
            return {"pivot_similarity": cfg["pivot_similarity"], "structure": None}
        groups = None if collections is None else torch.from_numpy(collections).to(x.device)
        ctx = StructureContext.build(
            x, index, k=cfg["k1"], collections=groups, similarity=similarity
        )
        return {"pivot_similarity": False, "structure": ctx}

    def _knn(
        self,
        x: torch.Tensor,
        width: int,
        given: Any = None,
        collections: Optional[np.ndarray] = None,
    ) -> torch.Tensor:
        return self._knn_table(x, width, given, collections)[0]

    def _knn_table(
        self,
        x: torch.Tensor,
        width: int,
        given: Any = None,
        collections: Optional[np.ndarray] = None,
    ) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """The kNN table and its cosine similarities (``None`` unless this search gave them)."""
        if collections is not None and given is None:
            return self._knn_within(x, width, collections), None
        k = min(width, _smallest(collections, x.shape[0]) - 1)
        if given is None:
            with skip_validation():
                index, sim = knn(
                    x, k, metric=self.metric, backend=self.knn_backend, verbose=self.verbose
                )
            return index, (sim if self.metric == "cosine" else None)
        return check_knn_index(
            given, x.shape[0], name="knn_index", rows_of="X", min_width=k, device=x.device,
            why="k_at_hop, active_connection and, to fit, the sampler's pool",
        ), None  # fmt: skip

    def _knn_within(self, x: torch.Tensor, width: int, collections: np.ndarray) -> torch.Tensor:
        """One kNN table of several collections, each searched within itself (global ids)."""
        k = min(width, _smallest(collections, x.shape[0]) - 1)
        index = torch.empty(x.shape[0], k, dtype=torch.long, device=x.device)
        for c in np.unique(collections):  # one search per collection
            rows = torch.from_numpy(np.flatnonzero(collections == c)).to(x.device)
            local = self._knn(x.index_select(0, rows), k)
            index[rows] = rows[local[:, :k]]
        return index

    def _edges(
        self,
        x: torch.Tensor,
        index: torch.Tensor,
        cfg: dict[str, Any],
        inputs: Optional[dict[str, Any]] = None,
        *,
        directed: bool = False,
        similarity: Optional[torch.Tensor] = None,
    ):
        """Pooled pairs and scores of every node's ``k1`` links, by the GCN or the cascade.

        With ``directed``, also the ``(N, k1)`` directed scores. ``similarity``:
        the cosines of ``index``, when the search gave them.
        """
        model = self.model_.to(x.device)
        if inputs is None:
            inputs = self._link_inputs(x, index, cfg, similarity=similarity)
        start = time.perf_counter()
        cascade = getattr(self, "cascade_", None) if cfg["cascade"] else None
        if x.shape[0] < CASCADE_MIN_NODES:
            cascade = None
        k = min(cfg["k1"], index.shape[1])
        hop1 = index[:, :k]
        settings = dict(k1=cfg["k1"], k2=cfg["k2"], active_connection=cfg["active_connection"],
                        batch_size=cfg["inference_batch_size"], verbose=cfg["verbose"],
                        precision=cfg["precision"], **inputs)  # fmt: skip
        try:  # under torchrun each rank scores its share of the pivots; all get every score
            if cascade is None:
                _, _, flat = predict_links(model, x, index, **settings)
                scores = flat.view(-1, k)
            else:
                context = self._prior_context(x, index, cfg, inputs, similarity=similarity)
                scores = cascade.prior_scores(context)
                todo = cascade.split(scores)
                if todo.numel():
                    _, _, flat = predict_links(model, x, index, pivots=todo, **settings)
                    scores.index_copy_(0, todo, flat.view(-1, k).to(scores.dtype))
                logger.info(
                    "cascade: the GCN scored %d of %d pivots (%.0f%%), the link prior the others",
                    todo.numel(), x.shape[0], 100 * todo.numel() / max(x.shape[0], 1),
                )  # fmt: skip
        finally:
            self.model_ = model.cpu()
        src = torch.arange(x.shape[0], device=x.device).repeat_interleave(k)
        edge_index, pooled = pool_pair_scores(
            src, hop1.reshape(-1), scores.reshape(-1), num_nodes=x.shape[0], pool=cfg["pool"]
        )
        logger.info(
            "scored %d links of %d items (%d pairs after %s pooling) in %.1f s",
            src.shape[0], x.shape[0], pooled.shape[0], cfg["pool"], time.perf_counter() - start,
        )  # fmt: skip
        if directed:
            return edge_index.cpu().numpy(), pooled.cpu().numpy(), scores
        return edge_index.cpu().numpy(), pooled.cpu().numpy()

    def _calibrate(
        self,
        scored: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
        cfg: dict[str, Any],
        where: str,
    ) -> tuple[float, Optional[float], Optional[float]]:
        """The cuts maximising the mean B-Cubed F of the merge over labelled scored sets.

        The link cut (``threshold="auto"``): a coarse grid (steps of 0.1),
        then a finer one (0.025) around its best; at each, every cluster cut
        of ``join_threshold="auto"`` and, after each join, every piece cut of
        ``attach_threshold="auto"`` (one merge per link cut). A fixed
        ``threshold``, ``join_threshold`` or ``attach_threshold`` is the only
        candidate of its own.
        """
        joins = _JOIN_GRID if cfg["join_threshold"] == "auto" else (cfg["join_threshold"],)
        attaches = (
            _ATTACH_GRID if cfg["attach_threshold"] == "auto" else (cfg["attach_threshold"],)
        )
        combos = [(j, a) for j in joins for a in attaches]
        tried: dict[tuple[float, Optional[float], Optional[float]], float] = {}

        def try_cut(th: float) -> None:
            fs = np.zeros(len(combos))
            for e, s, y in scored:
                labels = self._merge_at(e, s, y.shape[0], cfg, th)
                i = 0
                for join in joins:
                    joined = labels if join is None else join_clusters(labels, e, s, join)
                    for attach in attaches:
                        out = joined if attach is None else attach_clusters(joined, e, s, attach)
                        fs[i] += bcubed_fscore(y, out)[2]
                        i += 1
            tried.update({(th, *c): f / len(scored) for c, f in zip(combos, fs)})

        def best() -> tuple[float, Optional[float], Optional[float]]:
            # ties: the lower link cut, then no join, the lower cluster cut, no attachment,
            # the lower piece cut
            return max(
                sorted(tried, key=lambda k: (k[0], *(-1 if c is None else c for c in k[1:]))),
                key=tried.get,
            )

        start = time.perf_counter()
        if cfg["threshold"] != "auto":
            try_cut(float(cfg["threshold"]))
        else:
            for th in _COARSE_GRID:
                try_cut(float(th))
            coarse = best()[0]
            for th in np.round(np.arange(coarse - 0.075, coarse + 0.08, 0.025), 4):
                if 0 < th < 1 and (float(th), *combos[0]) not in tried:
                    try_cut(float(th))
        cut, join, attach = best()
        logger.info(
            "link cut calibrated on %s: %.4f, cluster cut %s, piece cut %s (B-Cubed F %.4f, "
            "%s merge, %d cuts tried in %.1f s)",
            where, cut, _cut_text(join), _cut_text(attach), tried[cut, join, attach],
            cfg["merge"], len(tried), time.perf_counter() - start,
        )  # fmt: skip
        return cut, join, attach

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
        cfg = self.resolved_params()
        n_samples = check_int(n_samples, "n_samples", minimum=1)
        return self._merge(edge_index, scores, n_samples, cfg)

    def link_threshold(self) -> float:
        """The link cut :meth:`predict` uses: ``threshold``, or ``threshold_`` when ``"auto"``.

        Examples
        --------
        >>> LinkageClusterer.pretrained("dlib-128", threshold=0.7).link_threshold()
        0.7
        """
        check_is_fitted(self, "model_")
        threshold = check_param("threshold", self.threshold)
        return self.threshold_ if threshold == "auto" else float(threshold)

    def join_cut(self) -> Optional[float]:
        """The cluster cut :meth:`predict` uses: ``join_threshold``, or ``join_threshold_`` if auto.

        ``None``: clusters are not joined (see ``join_threshold``).

        Examples
        --------
        >>> LinkageClusterer.pretrained("dlib-128").join_cut() is None
        True
        """
        check_is_fitted(self, "model_")
        join = check_param("join_threshold", self.join_threshold)
        return getattr(self, "join_threshold_", None) if join == "auto" else join

    def attach_cut(self) -> Optional[float]:
        """The piece cut :meth:`predict` uses: ``attach_threshold`` (``attach_threshold_`` if auto).

        ``None``: pieces are not attached (see ``attach_threshold``).

        Examples
        --------
        >>> LinkageClusterer.pretrained("dlib-128").attach_cut() is None
        True
        """
        check_is_fitted(self, "model_")
        attach = check_param("attach_threshold", self.attach_threshold)
        return getattr(self, "attach_threshold_", None) if attach == "auto" else attach

    def _cluster_cuts(self) -> tuple[Optional[float], Optional[float]]:
        """The cuts after the merge: ``(join_cut(), attach_cut())``."""
        return self.join_cut(), self.attach_cut()

    def merge_rule(self, *, constrained: bool = False) -> Callable[..., np.ndarray]:
        """The clusterer's merge (``merge``, ``merge_runs``, its seed) as a function.

        Parameters
        ----------
        constrained : bool
            The form that takes names as cannot-link constraints (for a partly
            named collection, see :class:`~linkage_gcn.incremental.IncrementalClusterer`).

        Returns
        -------
        callable
            ``rule(edge_index, scores, num_nodes, threshold) -> labels``, or
            with ``constrained``, ``rule(edge_index, scores, num_nodes,
            threshold, names) -> labels``; the merge comes from
            :data:`linkage_gcn.merges.MERGES`.

        Examples
        --------
        >>> rule = LinkageClusterer(merge="threshold").merge_rule()
        >>> rule(np.array([[0, 1], [1, 2]]), np.array([0.9, 0.2]), 3, 0.5).tolist()
        [0, 0, 1]
        """
        cfg = self.resolved_params()
        merge = resolve_merge(cfg["merge"])
        seed = self._merge_seed()
        if constrained:
            rule = functools.partial(merge.constrained, runs=cfg["merge_runs"], random_state=seed)
        else:
            rule = functools.partial(
                merge.cluster, runs=cfg["merge_runs"], max_size=cfg["max_size"],
                step=cfg["step"], random_state=seed,
            )  # fmt: skip
        cuts = (
            self._cluster_cuts() if self.__sklearn_is_fitted__()
            else (cfg["join_threshold"], cfg["attach_threshold"])
        )  # fmt: skip
        cuts = tuple(None if c == "auto" else c for c in cuts)
        if cuts == (None, None):
            return rule
        return functools.partial(_joined, rule, *cuts)

    def _merge(self, edge_index: Any, scores: Any, n: int, cfg: dict[str, Any]) -> np.ndarray:
        start = time.perf_counter()
        threshold, (join, attach) = self.link_threshold(), self._cluster_cuts()
        labels = self._merge_at(edge_index, scores, n, cfg, threshold, join, attach)
        if logger.isEnabledFor(logging.INFO):
            sizes = np.bincount(labels)
            how = (
                f"{cfg['merge']}, cut {threshold:.4g}"
                if resolve_merge(cfg["merge"]).uses_threshold
                else f"{cfg['merge']}, max_size={cfg['max_size']}, step={cfg['step']:g}"
            ) + ("" if join is None else f", clusters joined at {join:.4g}") + (
                "" if attach is None else f", pieces attached at {attach:.4g}"
            )
            logger.info(
                "merged %d items into %d clusters (%d singletons; %s) in %.1f s",
                n, sizes.size, int((sizes == 1).sum()), how, time.perf_counter() - start,
            )  # fmt: skip
        return labels

    def _merge_at(
        self, edge_index: Any, scores: Any, n: int, cfg: dict[str, Any], threshold: float,
        join: Optional[float] = None, attach: Optional[float] = None,
    ) -> np.ndarray:  # fmt: skip
        """Cluster scored links with the configured merge at link cut ``threshold``, then cut."""
        labels = resolve_merge(cfg["merge"], check_available=False).cluster(
            edge_index, scores, n, threshold, runs=cfg["merge_runs"], max_size=cfg["max_size"],
            step=cfg["step"], random_state=self._merge_seed(),
        )  # fmt: skip
        return _cut_clusters(labels, edge_index, scores, join, attach)

    def _merge_seed(self) -> Optional[int]:
        """A fixed seed for randomised merges when ``random_state`` is an int."""
        if isinstance(self.random_state, (int, np.integer)):
            return int(self.random_state)
        return None

    # ------------------------------------------------------------------ persistence

    def save(self, path: Union[str, Path], *, overwrite: bool = False) -> Path:
        """Save the fitted clusterer (parameters, weights, calibration) to one file.

        The file is a checkpoint of :mod:`linkage_gcn._archive`, written
        atomically; it never replaces an existing file unless asked.

        Parameters
        ----------
        path : str or Path
            The file to write (exactly this name).
        overwrite : bool
            Replace an existing file instead of raising :class:`FileExistsError`.

        Returns
        -------
        pathlib.Path
            The file written.
        """
        check_is_fitted(self, "model_")
        state = {
            "params": {**self.get_params(deep=False), **_saved_teacher(self.teacher)},
            "state_dict": self.model_.state_dict(),
            "n_features_in_": self.n_features_in_,
            "threshold_": self.threshold_,
            "join_threshold_": getattr(self, "join_threshold_", None),
            "attach_threshold_": getattr(self, "attach_threshold_", None),
            "history_": self.history_,
            "self_training_": getattr(self, "self_training_", []),
            "cascade_": None if getattr(self, "cascade_", None) is None else self.cascade_.state(),
            "labels_": torch.from_numpy(self.labels_),
            "preprocessing_mean_": _mean_tensor(getattr(self, "preprocessing_mean_", None)),
        }
        return write_checkpoint(path, state, overwrite=overwrite)

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

        Returns
        -------
        LinkageClusterer
            The fitted clusterer.

        Raises
        ------
        FileNotFoundError
            When ``path`` is not a file (or is a directory).
        ValueError
            Naming the file and the problem: not a PyTorch archive (another
            kind of file, truncated or corrupted), a PyTorch file that is not
            a linkage-gcn checkpoint, a newer format, objects that need
            ``trusted=True``, missing or malformed fields and parameters
            (a NaN threshold or preprocessing mean, say), weights holding NaN
            or infinity, or weights that do not fit the configuration
            recorded with them.
        """
        p = as_path(path)
        state = read_checkpoint(p, trusted=trusted, required=_CHECKPOINT_FIELDS)
        est = _from_params(cls, p, state)
        try:
            est.n_features_in_ = check_int(state["n_features_in_"], "n_features_in_", minimum=1)
            est.threshold_ = check_real(state["threshold_"], "threshold_", minimum=0, maximum=1)
            join = state.get("join_threshold_")  # absent from checkpoints before 0.3
            est.join_threshold_ = (
                None if join is None
                else check_real(join, "join_threshold_", minimum=0, maximum=1)
            )  # fmt: skip
            attach = state.get("attach_threshold_")  # absent from checkpoints before 0.4
            est.attach_threshold_ = (
                None if attach is None
                else check_real(attach, "attach_threshold_", minimum=0, maximum=1)
            )  # fmt: skip
            est.history_ = _check_history(state["history_"])
            est.self_training_ = _check_history(state.get("self_training_", []))
            cascade = state.get("cascade_")  # absent from checkpoints before 0.3
            est.cascade_ = None if cascade is None else Cascade.from_state(cascade)
            est.labels_ = _check_cluster_ids(state["labels_"])
            est.preprocessing_mean_ = _check_mean(
                state.get("preprocessing_mean_"), est.preprocessing, est.n_features_in_
            )
            weights = _check_weights(state["state_dict"])
            model = est._build_model(est.n_features_in_)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{p}: malformed checkpoint field: {exc}") from exc
        try:
            model.load_state_dict(weights)
        except (RuntimeError, TypeError, AttributeError) as exc:
            detail = " ".join(str(exc).split())
            raise ValueError(
                f"{p}: the weights do not fit the configuration recorded with them "
                f"({est.n_features_in_} input features, hidden_channels={est.hidden_channels!r}, "
                f"pivot_similarity={est.pivot_similarity!r}): {detail[:500]}"
            ) from exc
        est.model_ = model.eval()
        return est

    @classmethod
    def pretrained(cls, name: str = "dlib-128", **params: Any) -> LinkageClusterer:
        """Load a model shipped with linkage-gcn, ready to :meth:`predict`.

        ``"dlib-128"`` clusters dlib's 128-D face descriptors as
        ``face_recognition.face_encodings`` returns them (raw, not
        normalised): its preprocessing, metric, merge and calibrated cut
        travel inside it. It was trained on Labeled Faces in the Wild; see
        the model card (``docs/pretrained.md``) for its figures and limits.
        ``"face-any"`` clusters the embeddings of any face model, of any
        dimension, with no labels (``features="structure"``; model card
        ``docs/any_face.md``).

        Parameters
        ----------
        name : str
            One of :func:`linkage_gcn.pretrained.available_models`.
        **params
            Parameters to change after loading, as :meth:`set_params`
            (for example ``device="cuda"``, ``threads=2``, ``threshold=0.9``).

        Returns
        -------
        LinkageClusterer
            The fitted clusterer.

        Raises
        ------
        ValueError
            When ``name`` is unknown (the message lists the shipped models).
        OSError
            When the shipped file is damaged (it is checked against its
            SHA-256).

        Examples
        --------
        >>> est = LinkageClusterer.pretrained("dlib-128")
        >>> est.n_features_in_, est.preprocessing, est.merge
        (128, 'none', 'chinese-whispers')
        """
        from .pretrained import model_path

        est = cls.load(model_path(name))
        return est.set_params(**params) if params else est

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "model_")


def _saved_teacher(teacher: Any) -> dict[str, Any]:
    """The ``teacher`` a checkpoint records: a pretrained name, or ``None`` for an object."""
    return {"teacher": teacher if isinstance(teacher, str) or teacher is None else None}


def _calibrated(cfg: dict[str, Any]) -> bool:
    """Whether fit chooses a cut on labelled scores (``"auto"`` of a merge that has one)."""
    auto = "auto" in (cfg["threshold"], cfg["join_threshold"], cfg["attach_threshold"])
    return auto and resolve_merge(cfg["merge"]).uses_threshold


def _joined(rule: Callable[..., np.ndarray], join: Optional[float], attach: Optional[float],
            edge_index: Any, scores: Any, num_nodes: int, threshold: float,
            *names: Any) -> np.ndarray:  # fmt: skip
    """A merge rule's clusters after the cluster cuts (names kept apart)."""
    labels = rule(edge_index, scores, num_nodes, threshold, *names)
    return _cut_clusters(labels, edge_index, scores, join, attach, *names)


def _cut_clusters(labels: np.ndarray, edge_index: Any, scores: Any, join: Optional[float],
                  attach: Optional[float], *names: Any) -> np.ndarray:  # fmt: skip
    """The cuts after a merge: clusters joined at ``join``, then pieces attached at ``attach``."""
    if join is not None:
        labels = join_clusters(labels, edge_index, scores, join, *names)
    if attach is not None:
        labels = attach_clusters(labels, edge_index, scores, attach, *names)
    return labels


def _cut_text(cut: Optional[float]) -> str:
    return "none" if cut is None else f"{cut:.4g}"


def _mean_tensor(mean: Optional[np.ndarray]) -> Optional[torch.Tensor]:
    return None if mean is None else torch.from_numpy(np.asarray(mean, dtype=np.float32))


#: The entries a checkpoint must hold (``preprocessing_mean_`` only for center-l2).
_CHECKPOINT_FIELDS = (
    "params",
    "state_dict",
    "n_features_in_",
    "threshold_",
    "history_",
    "labels_",
)

#: Parameters not checked at load: they depend on the machine (``set_params`` changes them).
_MACHINE_PARAMS = ("device",)
#: Parameters a checkpoint does not restore: the loading machine's default applies.
_NOT_RESTORED = ("threads",)


def _from_params(cls: type, p: Path, state: dict[str, Any]) -> Any:
    """An unfitted estimator of the checkpoint's parameters, each checked by its declaration."""
    params = state["params"]
    if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
        raise ValueError(
            f"{p}: malformed checkpoint field: params must be a dict of parameter names, "
            f"got {type(params).__name__}."
        )
    unknown = sorted(set(params) - set(cls._get_param_names()))
    if unknown:
        raise ValueError(
            f"{p}: the checkpoint holds parameters this version of linkage-gcn does not "
            f"know: {unknown} (written by linkage-gcn {state.get('version', '?')})."
        )
    params = {k: v for k, v in params.items() if k not in _NOT_RESTORED}
    try:
        for name, value in params.items():
            if name not in _MACHINE_PARAMS:
                check_param(name, value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{p}: malformed checkpoint parameter: {exc}") from exc
    return cls(**params)


def _check_history(history: Any) -> list[dict[str, Any]]:
    """The saved training history: a list of per-epoch dicts."""
    if not isinstance(history, (list, tuple)) or not all(isinstance(h, dict) for h in history):
        raise ValueError(
            f"history_ must be a list of per-epoch dicts, got {type(history).__name__}"
        )
    return list(history)


def _check_cluster_ids(labels: Any) -> np.ndarray:
    """The saved training clusters: whole numbers >= 0, one per training sample."""
    labels = check_labels(labels, name="labels_")
    if labels.size and labels.min() < 0:
        raise ValueError(f"labels_ must hold cluster ids >= 0, got {int(labels.min())}")
    return labels


def _check_mean(mean: Any, method: str, n_features: int) -> Optional[np.ndarray]:
    """The saved preprocessing mean: finite (n_features,) floats for center-l2, else None."""
    if method != "center-l2":
        return None
    need = "preprocessing='center-l2' needs the training mean preprocessing_mean_ of shape "
    if not isinstance(mean, (torch.Tensor, np.ndarray)):
        raise ValueError(f"{need}({n_features},), got {type(mean).__name__}")
    array = mean.detach().cpu().numpy() if isinstance(mean, torch.Tensor) else mean
    if array.shape != (n_features,) or array.dtype.kind not in "fiu":
        raise ValueError(f"{need}({n_features},), got {array.dtype} of shape {array.shape}")
    bad = int(np.count_nonzero(~np.isfinite(array)))
    if bad:
        raise ValueError(
            f"preprocessing_mean_ holds {bad} NaN or infinite value(s) of {n_features}: the "
            "stored training mean is damaged (predict would fail on every input); refit."
        )
    return array.astype(np.float32)


def _check_weights(weights: Any) -> Any:
    """The saved weights: a mapping whose floating tensors are finite."""
    if not hasattr(weights, "items"):
        raise ValueError(f"state_dict must be a dict of tensors, got {type(weights).__name__}")
    for name, tensor in weights.items():
        if isinstance(tensor, torch.Tensor) and tensor.is_floating_point():
            if not torch.isfinite(tensor).all():
                raise ValueError(
                    f"state_dict entry {name!r} holds NaN or infinity (a diverged training, "
                    "or a damaged file); retrain the model"
                )
    return weights


# ---------------------------------------------------------------------- cross-parameter rules


def _check_structure_settings(cfg: dict[str, Any]) -> None:
    """``features="structure"`` reads cosine kNN lists of rows of any dimension."""
    if cfg["metric"] != "cosine":
        raise ValueError(
            f"features='structure' standardises cosine similarities; use metric='cosine' "
            f"(got metric={cfg['metric']!r})."
        )
    if cfg["preprocessing"] == "center-l2":
        raise ValueError(
            "features='structure' takes embeddings of any dimension, so no fitted mean can be "
            "subtracted: use preprocessing='none' or 'l2' (got 'center-l2')."
        )
    if cfg["precision"] == "int8":
        raise ValueError(
            "precision='int8' is a fast path of the embedding features; features='structure' "
            "scores in 'fp32', 'bf16' or 'tf32'."
        )


def _check_collections(collections: Any, n: int) -> Optional[np.ndarray]:
    """Collection ids ``0..C-1`` of ``n`` rows (any comparable ids in), each of >= 2 rows."""
    if collections is None:
        return None
    groups = check_labels(collections, n_samples=n, name="collections", encode=True)
    counts = np.bincount(groups)
    if counts.min() < 2:
        raise ValueError(
            f"collections: every collection needs at least two rows; one has "
            f"{int(counts.min())}."
        )
    return groups


def _subset_groups(groups: Optional[np.ndarray], rows: np.ndarray) -> Optional[np.ndarray]:
    """The collections of a subset of rows, renumbered ``0..C'-1``."""
    if groups is None:
        return None
    return np.unique(groups[rows], return_inverse=True)[1].astype(np.int64)


def _family_view(
    labels: np.ndarray, groups: Optional[np.ndarray], min_faces: int, min_rows: int
) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """The rows of the people with ``min_faces`` or more faces in their collection.

    Returns the rows and their collections renumbered ``0..C'-1`` (``None``
    for one collection); a collection whose view has fewer than two people or
    ``min_rows`` rows is left out.
    """
    coll = np.zeros(labels.shape[0], dtype=np.int64) if groups is None else groups
    key = np.unique(np.stack([coll, labels]), axis=1, return_inverse=True)[1].reshape(-1)
    many = np.bincount(key)[key] >= min_faces
    keep = np.zeros(labels.shape[0], dtype=bool)
    for c in np.unique(coll[many]):  # one pass per collection
        rows = many & (coll == c)
        if rows.sum() >= min_rows and np.unique(labels[rows]).size >= 2:
            keep |= rows
    rows = np.flatnonzero(keep)
    return rows, _subset_groups(groups, rows)


def _size_view(
    groups: Optional[np.ndarray], n: int, fraction: float, min_rows: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, Optional[np.ndarray]]:  # fmt: skip
    """Random rows holding ``fraction`` of each collection (sorted), and their collections.

    Returns the rows and their collections renumbered ``0..C'-1`` (``None``
    for one collection); a collection whose subsample has fewer than
    ``min_rows`` rows is left out.
    """
    coll = np.zeros(n, dtype=np.int64) if groups is None else groups
    parts = []
    for c in np.unique(coll):  # one draw per collection
        rows = np.flatnonzero(coll == c)
        m = round(fraction * rows.size)
        if m >= min_rows:
            parts.append(rng.choice(rows, m, replace=False))
    rows = np.sort(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)
    return rows, _subset_groups(groups, rows)


def _smallest(groups: Optional[np.ndarray], n: int) -> int:
    """The size of the smallest collection (``n`` for one)."""
    return n if groups is None else int(np.bincount(groups).min())


def _split_collections(
    edge_index: np.ndarray, scores: np.ndarray, labels: np.ndarray, groups: Optional[np.ndarray]
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The scored links and labels of each collection, with its own node ids."""
    if groups is None:
        return [(edge_index, scores, labels)]
    out = []
    for c in range(int(groups.max()) + 1):
        rows = np.flatnonzero(groups == c)
        local = np.full(groups.shape[0], -1, dtype=np.int64)
        local[rows] = np.arange(rows.shape[0])
        keep = groups[edge_index[0]] == c  # links never cross collections
        out.append((local[edge_index[:, keep]], scores[keep], labels[rows]))
    return out


def _knn_widths(cfg: dict[str, Any]) -> dict[str, int]:
    """The kNN table widths of fit (the sampler's pool) and predict (the ``k1`` nearest)."""
    k1, k2, u = cfg["k1"], cfg["k2"], cfg["active_connection"]
    need_fit = max(cfg["sampler"].pool_size(), k1, k2, u)
    need_predict = max(k1, k2, u)
    if cfg["n_neighbors"] is not None:
        if cfg["n_neighbors"] < need_fit:
            raise ValueError(
                f"n_neighbors={cfg['n_neighbors']} is narrower than the {need_fit} neighbours "
                "that k_at_hop, active_connection and the sampler need."
            )
        need_fit = need_predict = cfg["n_neighbors"]
    return {"n_neighbors_fit": need_fit, "n_neighbors_predict": need_predict}
