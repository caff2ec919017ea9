"""linkage-gcn: linkage-based clustering of embeddings with graph convolution networks.

The public API is re-exported here; everything else can be imported from the
module where it lives (``linkage_gcn.knn``, ``linkage_gcn.ips``, ...).
"""

__version__ = "0.1.0"

from .estimator import LinkageClusterer
from .ips import IPSDataset, IPSTransform, build_ips
from .knn import knn
from .loader import RIWSNodeSampler
from .losses import ClassBalancedLoss, FocalLoss, class_balanced_loss, focal_loss
from .merge import pool_pair_scores, propagate_labels, threshold_components
from .metrics import bcubed_fscore, edge_ap, evaluate, nmi, pairwise_fscore
from .nn import LinkageGCN
from .samplers import ReSampler, RIWSSampler, TopKSampler
from .transforms import RIWSTransform

__all__ = [
    "ClassBalancedLoss",
    "FocalLoss",
    "IPSDataset",
    "IPSTransform",
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
    "class_balanced_loss",
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
