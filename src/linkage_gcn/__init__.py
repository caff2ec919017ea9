"""linkage-gcn: linkage-based clustering of embeddings with graph convolution networks.

The public API is re-exported here; everything else can be imported from the
module where it lives (``linkage_gcn.knn``, ``linkage_gcn.ips``, ...). The
names are imported when first used (PEP 562), so that ``import linkage_gcn``
and the command line's ``--version`` and ``--help`` load neither torch nor
PyTorch Geometric. Their one list is the stub ``__init__.pyi`` beside this
file (which type checkers read): it is parsed here, as scientific-python's
``lazy_loader.attach_stub`` does.
"""

from __future__ import annotations

import ast
import importlib
import sys
import types
from pathlib import Path
from typing import Any

from ._version import __version__ as __version__


def _exports() -> dict[str, str]:
    """``name -> module`` of every ``from .module import name as name`` of the stub."""
    tree = ast.parse((Path(__file__).with_name("__init__.pyi")).read_text(encoding="utf-8"))
    return {
        alias.asname or alias.name: node.module
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module != "_version"
        for alias in node.names
    }


_EXPORTS = _exports()
__all__ = sorted([*_EXPORTS, "__version__"], key=lambda s: (s.startswith("_"), s.lower()))


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'linkage_gcn' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


class _Package(types.ModuleType):
    """The package, whose exported functions win over submodules of the same name.

    Importing a submodule sets it as an attribute of its package; where a
    function is exported under that submodule's name (``linkage_gcn.knn``),
    the function is kept, as an eager ``from .knn import knn`` would.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and _EXPORTS.get(name) == name:
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
