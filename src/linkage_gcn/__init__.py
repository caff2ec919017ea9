"""linkage-gcn: linkage-based clustering of embeddings with graph convolution networks."""

__version__ = "0.1.0"

__all__ = ["__version__"]
