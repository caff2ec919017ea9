"""The version of linkage-gcn: the one place it is written (read by the build and the package)."""

__version__ = "0.2.0"
