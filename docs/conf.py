"""Sphinx configuration (``pip install -e ".[docs]" && sphinx-build docs docs/_build``)."""

import linkage_gcn

project = "linkage-gcn"
copyright = "2026, the linkage-gcn developers"
release = linkage_gcn.__version__
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
autosummary_generate = True
numpydoc_show_class_members = False
exclude_patterns = ["_build"]
intersphinx_mapping = {
    "python": ("https://docs.python.org/3", None),
    "torch": ("https://pytorch.org/docs/stable", None),
    "torch_geometric": ("https://pytorch-geometric.readthedocs.io/en/latest", None),
    "sklearn": ("https://scikit-learn.org/stable", None),
}
html_theme = "alabaster"
