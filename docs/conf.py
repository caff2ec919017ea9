"""Sphinx configuration.

Build (offline, warnings are errors, as CI does)::

    pip install -e ".[docs]"
    sphinx-build -W --keep-going -b html docs docs/_build/html

The notebooks ``examples/*.ipynb`` are copied into ``docs/notebooks/`` (git-ignored) at every
build and rendered with their committed outputs (never executed). Links to the Python, torch,
PyG and scikit-learn documentation (intersphinx) need the network: they are resolved only when
``LINKAGE_GCN_DOCS_ONLINE=1``.
"""

import json
import os
import shutil
from pathlib import Path

import linkage_gcn

project = "linkage-gcn"
copyright = "2026, the linkage-gcn developers"
release = linkage_gcn.__version__

DOCS = Path(__file__).resolve().parent
EXAMPLES = DOCS.parent / "examples"
NOTEBOOKS = DOCS / "notebooks"


def copy_notebooks(source: Path = EXAMPLES, target: Path = NOTEBOOKS) -> list[str]:
    """Mirror ``source/*.ipynb`` into ``target`` (whatever the notebooks are called today).

    The copies are highlighted as IPython (``!command`` and ``%magic`` lines are valid
    there). A notebook is written only when its copy changed (so Sphinx does not re-read
    the others) and copies whose notebook is gone are removed. Returns the names copied.
    """
    target.mkdir(exist_ok=True)
    wanted = {p.name: p for p in sorted(source.glob("*.ipynb"))}
    for stale in target.glob("*.ipynb"):
        if stale.name not in wanted:
            stale.unlink()
    for name, src in wanted.items():
        notebook = json.loads(src.read_text(encoding="utf-8"))
        info = notebook.setdefault("metadata", {}).setdefault("language_info", {})
        info.setdefault("pygments_lexer", "ipython3")
        text = json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"
        dst = target / name
        if not dst.exists() or dst.read_text(encoding="utf-8") != text:
            dst.write_text(text, encoding="utf-8")
    return list(wanted)


copy_notebooks()
# autosummary writes a page per API name into generated/ but never removes the page of a
# name that left docs/api.md (Sphinx would then warn that it is in no toctree): start afresh.
shutil.rmtree(DOCS / "generated", ignore_errors=True)

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_nb",  # includes the MyST Markdown parser (myst_parser) and reads .ipynb
]
autosummary_generate = True
numpydoc_show_class_members = False
exclude_patterns = ["_build", "**.ipynb_checkpoints", "Thumbs.db", ".DS_Store"]

# Markdown: "page.md#a-heading" links resolve for headings down to level 3.
myst_heading_anchors = 3
myst_enable_extensions = ["dollarmath"]

# Notebooks are rendered with the outputs committed in examples/ (CI runs them with nbmake).
nb_execution_mode = "off"

# Cross-links to other projects' docs need their inventories, i.e. the network: opt in.
if os.environ.get("LINKAGE_GCN_DOCS_ONLINE") == "1":
    extensions.append("sphinx.ext.intersphinx")
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable", None),
        "torch": ("https://pytorch.org/docs/stable", None),
        "torch_geometric": ("https://pytorch-geometric.readthedocs.io/en/latest", None),
        "sklearn": ("https://scikit-learn.org/stable", None),
    }

html_theme = "alabaster"
html_title = f"linkage-gcn {release}"
