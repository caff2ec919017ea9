"""linkage-gcn: linkage-based clustering of embeddings with graph convolution networks.

The public API is re-exported here; everything else can be imported from the
module where it lives (``linkage_gcn.knn``, ``linkage_gcn.ips``, ...).
"""

from ._version import __version__
from .community import chinese_whispers, consensus_chinese_whispers
from .estimator import LinkageClusterer
from .incremental import IncrementalClusterer
from .ips import IPSDataset, IPSTransform, build_ips
from .knn import knn
from .loader import RIWSNodeSampler
from .losses import ClassBalancedLoss, FocalLoss, class_balanced_loss, focal_loss
from .merge import (
    constrained_components,
    pool_pair_scores,
    propagate_labels,
    threshold_components,
)
from .metrics import bcubed_fscore, edge_ap, evaluate, nmi, pairwise_fscore
from .nn import LinkageGCN
from .preprocessing import EmbeddingPreprocessor
from .samplers import ReSampler, RIWSSampler, TopKSampler
from .transforms import RIWSTransform

__all__ = [
    "ClassBalancedLoss",
    "EmbeddingPreprocessor",
    "FocalLoss",
    "IPSDataset",
    "IPSTransform",
    "IncrementalClusterer",
    "LinkageClusterer",
    "LinkageGCN",
    "RIWSNodeSampler",
    "RIWSSampler",
    "RIWSTransform",
    "ReSampler",
    "TopKSampler",
    "__version__",
    "bcubed_fscore",
    "build_ips",
    "chinese_whispers",
    "class_balanced_loss",
    "consensus_chinese_whispers",
    "constrained_components",
    "edge_ap",
    "evaluate",
    "focal_loss",
    "knn",
    "nmi",
    "pairwise_fscore",
    "pool_pair_scores",
    "propagate_labels",
    "threshold_components",
]
