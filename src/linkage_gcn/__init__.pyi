"""The public API of linkage-gcn: the one list of what the package root re-exports.

Read by type checkers, and by ``__init__.py`` at run time to import each name lazily.
"""

from ._version import __version__ as __version__
from .community import chinese_whispers as chinese_whispers
from .community import consensus_chinese_whispers as consensus_chinese_whispers
from .estimator import LinkageClusterer as LinkageClusterer
from .incremental import IncrementalClusterer as IncrementalClusterer
from .ips import IPSDataset as IPSDataset
from .ips import IPSTransform as IPSTransform
from .ips import build_ips as build_ips
from .knn import knn as knn
from .loader import RIWSNodeSampler as RIWSNodeSampler
from .losses import ClassBalancedLoss as ClassBalancedLoss
from .losses import FocalLoss as FocalLoss
from .losses import class_balanced_loss as class_balanced_loss
from .losses import focal_loss as focal_loss
from .merge import constrained_components as constrained_components
from .merge import pool_pair_scores as pool_pair_scores
from .merge import propagate_labels as propagate_labels
from .merge import threshold_components as threshold_components
from .metrics import bcubed_fscore as bcubed_fscore
from .metrics import edge_ap as edge_ap
from .metrics import evaluate as evaluate
from .metrics import nmi as nmi
from .metrics import pairwise_fscore as pairwise_fscore
from .nn import LinkageGCN as LinkageGCN
from .preprocessing import EmbeddingPreprocessor as EmbeddingPreprocessor
from .samplers import ReSampler as ReSampler
from .samplers import RIWSSampler as RIWSSampler
from .samplers import TopKSampler as TopKSampler
from .transforms import RIWSTransform as RIWSTransform
