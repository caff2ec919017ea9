"""The documentation: every public name in the API reference, summaries that are not cut.

Read from the sources (``ast``), nothing is imported: a module that needs an optional
dependency (matplotlib, infomap, faiss) is checked like the others. The Sphinx build itself
(``sphinx-build -W``) is CI's own step (``.ci/run``); ``test_sphinx_build`` runs it here
with ``--runslow``.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Optional

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "linkage_gcn"
DOCS = ROOT / "docs"
API = DOCS / "api.md"

#: Abbreviations whose period autosummary takes for the end of the first sentence.
#: Sphinx skips "et al." and "vs." (and, since 3.x, "e.g." and "i.e.": checked anyway, as
#: other tools cut there).
ABBREVIATIONS = ("Fig", "fig", "Figs", "figs", "Eq", "eq", "Eqs", "eqs", "e.g", "i.e", "cf",
                 "approx", "resp", "Sec", "Tab")  # fmt: skip
_ABBREVIATION_END = re.compile(
    r"(?:^|[\s(\[])(" + "|".join(re.escape(a) for a in ABBREVIATIONS) + r")\.$"
)


# ------------------------------------------------------------------------- the sources


def _module_path(module: str) -> Optional[Path]:
    """The source file of ``linkage_gcn[.sub...]``, or None."""
    parts = module.split(".")[1:]
    base = PACKAGE.joinpath(*parts)
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def public_modules() -> list[str]:
    """Every module of the package none of whose dotted parts starts with ``_``."""
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if any(p.startswith("_") for p in parts[1:]):
            continue
        out.append(".".join(parts))
    return out


@cache
def _tree(module: str) -> ast.Module:
    path = _module_path(module)
    if path is None:
        raise LookupError(f"no module {module}")
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def module_all(module: str) -> list[str]:
    """The literal ``__all__`` of a module ([] when it has none).

    The package root builds its ``__all__`` from the re-exports of its stub
    ``__init__.pyi`` (lazy imports): those are read instead.
    """
    stub = _module_path(module).with_suffix(".pyi")
    if stub.is_file():
        tree = ast.parse(stub.read_text(encoding="utf-8"))
        return [
            a.asname or a.name
            for node in tree.body
            if isinstance(node, ast.ImportFrom)
            for a in node.names
        ]
    for node in _tree(module).body:
        targets = node.targets if isinstance(node, ast.Assign) else (
            [node.target] if isinstance(node, ast.AnnAssign) else []
        )  # fmt: skip
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            return list(ast.literal_eval(node.value))
    return []


def _absolute(module: str, node: ast.ImportFrom) -> str:
    """The absolute name of a ``from ... import`` inside ``module``."""
    if not node.level:
        return node.module or ""
    package = module if _module_path(module).name == "__init__.py" else module.rsplit(".", 1)[0]
    base = package.split(".")
    if node.level > 1:
        base = base[: -(node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _definition(module: str, name: str) -> Optional[ast.AST]:
    """The top-level statement of ``module`` that binds ``name`` (last one wins)."""
    found = None
    stub = _module_path(module).with_suffix(".pyi")
    body = list(_tree(module).body)
    if stub.is_file():  # the lazy package root: its re-exports are in the stub
        body += ast.parse(stub.read_text(encoding="utf-8")).body
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if node.name == name:
                found = node
        elif isinstance(node, ast.Assign):
            if any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
                found = node
        elif isinstance(node, ast.AnnAssign):
            if isinstance(node.target, ast.Name) and node.target.id == name:
                found = node
        elif isinstance(node, ast.ImportFrom):
            if any((a.asname or a.name) == name for a in node.names):
                found = node
    return found


def canonical(module: str, name: str) -> str:
    """``defining_module.name`` of ``module.name``, following ``from .x import name``."""
    for _ in range(20):
        node = _definition(module, name)
        if node is None:
            # a submodule of a package (``linkage_gcn.experiments.runner``)
            if _module_path(f"{module}.{name}") is not None:
                return f"{module}.{name}"
            raise LookupError(f"{module} does not define {name}")
        if not isinstance(node, ast.ImportFrom):
            return f"{module}.{name}"
        source = _absolute(module, node)
        if not source.startswith("linkage_gcn"):
            return f"{source}.{name}"
        alias = next(a for a in node.names if (a.asname or a.name) == name)
        module, name = source, alias.name
    raise LookupError(f"import cycle at {module}.{name}")


def public_names() -> list[tuple[str, str]]:
    """``(module, name)`` for every name of every public module's ``__all__``."""
    return [
        (m, n) for m in public_modules() for n in module_all(m)
        if not (n.startswith("__") and n.endswith("__"))
    ]  # fmt: skip


# --------------------------------------------------------------------- the API page


#: A single object documented outside autosummary (``.. py:data:: linkage_gcn.x.Y``).
_DIRECTIVE = re.compile(r"\.\. (?:auto|py:)(?:data|function|class|attribute):: ([\w.]+)")


def documented_names(text: str) -> list[str]:
    """The dotted names listed in the page's autosummary tables."""
    names, current, in_table = [], "", False
    for line in text.splitlines():
        stripped = line.strip()
        directive = _DIRECTIVE.fullmatch(stripped)
        if directive:
            name = directive.group(1)
            names.append(name if name.startswith("linkage_gcn") else f"{current}.{name}")
            in_table = False
        elif stripped.startswith(".. currentmodule::"):
            current = stripped.split("::", 1)[1].strip()
            in_table = False
        elif stripped.startswith(".. autosummary::"):
            in_table = True
        elif in_table and (stripped.startswith(":") or not stripped):
            continue
        elif in_table and line.startswith("   ") and re.fullmatch(r"[\w.~]+", stripped):
            entry = stripped.lstrip("~")
            names.append(entry if entry.startswith("linkage_gcn") else f"{current}.{entry}")
        else:
            in_table = False
    return names


def _split(dotted: str) -> tuple[str, str]:
    """``(module, name)`` of a documented dotted name (the longest module prefix)."""
    parts = dotted.split(".")
    for i in range(len(parts) - 1, 0, -1):
        module = ".".join(parts[:i])
        if _module_path(module) is not None:
            return module, ".".join(parts[i:])
    raise LookupError(f"{dotted}: no such module")


def test_public_modules_found():
    modules = public_modules()
    assert "linkage_gcn" in modules and "linkage_gcn.estimator" in modules
    assert "linkage_gcn.experiments.runner" in modules
    assert not any("._" in m for m in modules)
    assert ("linkage_gcn", "LinkageClusterer") in public_names()


def test_canonical_follows_reexports():
    assert canonical("linkage_gcn", "LinkageClusterer") == "linkage_gcn.estimator.LinkageClusterer"
    assert canonical("linkage_gcn.io", "atomic_write") == "linkage_gcn._files.atomic_write"
    assert canonical("linkage_gcn.experiments", "PAPER_SETTINGS") == (
        "linkage_gcn.experiments.methods.PAPER_SETTINGS"
    )


def test_documented_names_parser():
    text = (
        "```{eval-rst}\n.. currentmodule:: linkage_gcn.knn\n\n.. autosummary::\n"
        "   :toctree: generated\n\n   knn\n   ~linkage_gcn.io.load_knn\n```\n   later\n"
        "```{eval-rst}\n.. autodata:: linkage_gcn.knn.METRICS\n   :no-value:\n```\n"
    )
    assert documented_names(text) == [
        "linkage_gcn.knn.knn", "linkage_gcn.io.load_knn", "linkage_gcn.knn.METRICS",
    ]  # fmt: skip


def test_every_documented_name_exists():
    """No entry of docs/api.md names something that is gone (autosummary would fail)."""
    missing = []
    for dotted in documented_names(API.read_text(encoding="utf-8")):
        try:
            module, name = _split(dotted)
            if "." not in name:
                canonical(module, name)
        except LookupError as error:
            missing.append(f"{dotted} ({error})")
    assert not missing, f"docs/api.md lists names that do not exist: {missing}"


def test_every_public_name_is_in_the_api_reference():
    """Each name of each public module's ``__all__`` is listed in docs/api.md.

    A name re-exported elsewhere (``linkage_gcn.LinkageClusterer`` is
    ``linkage_gcn.estimator.LinkageClusterer``) counts once: any listed alias will do.
    """
    documented = set()
    for dotted in documented_names(API.read_text(encoding="utf-8")):
        module, name = _split(dotted)
        documented.add(canonical(module, name) if "." not in name else dotted)
    missing = [
        f"{m}.{n}" for m, n in public_names() if canonical(m, n) not in documented
    ]  # fmt: skip
    assert not missing, (
        "public names missing from docs/api.md (add them to an autosummary table of their "
        f"module): {missing}"
    )


# ------------------------------------------------------------------ summary lines


def _comment_doc(module: str, node: ast.AST) -> str:
    """The ``#:`` comment lines just above an assignment (Sphinx's attribute doc)."""
    lines = _module_path(module).read_text(encoding="utf-8").splitlines()
    doc, i = [], node.lineno - 2
    while i >= 0 and lines[i].lstrip().startswith("#:"):
        doc.insert(0, lines[i].lstrip()[2:].strip())
        i -= 1
    return "\n".join(doc)


def _summary_paragraph(doc: str) -> str:
    """The first paragraph of a docstring on one line (what autosummary summarises)."""
    paragraph = []
    for line in doc.strip().splitlines():
        if not line.strip():
            break
        paragraph.append(line.strip())
    return " ".join(paragraph)


def cut_summary(paragraph: str) -> Optional[str]:
    """The text before an abbreviation's period where autosummary would end the summary."""
    for match in re.finditer(r"\.(?=\s|$)", paragraph):
        head = paragraph[: match.end()]
        if match.end() == len(paragraph.rstrip()):
            return None
        if _ABBREVIATION_END.search(head):
            return head
        if not re.search(r"(?:^|\s)(?:et al|vs)\.$", head):
            return None  # the first real sentence end comes first
    return None


def docstrings() -> list[tuple[str, str]]:
    """``(where, docstring)`` of every public module and every object of its ``__all__``."""
    out, seen = [], set()
    for module in public_modules():
        doc = ast.get_docstring(_tree(module))
        if doc:
            out.append((module, doc))
    for module, name in public_names():
        where = canonical(module, name)
        if where in seen or not where.startswith("linkage_gcn"):
            continue
        seen.add(where)
        defining, attr = where.rsplit(".", 1)
        if _module_path(where) is not None:
            continue  # a submodule: its docstring is above
        node = _definition(defining, attr)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            doc = ast.get_docstring(node)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            doc = _comment_doc(defining, node)
        else:
            doc = None
        if doc:
            out.append((where, doc))
    return out


@pytest.mark.parametrize(
    ("paragraph", "cut"),
    [
        ("Sizes as in Fig. 3 of the paper.", "Sizes as in Fig."),
        ("The focal loss (eq. 3).", "The focal loss (eq."),
        ("The focal loss (equation 3).", None),
        ("The focal loss of eq. 3 as printed.", "The focal loss of eq."),
        ("Ids, e.g. names.", "Ids, e.g."),
        ("A sentence. Then Fig. 3.", None),
        ("Weights, i.e. probabilities", "Weights, i.e."),
        ("RIWS (Yang et al.) weights.", None),
        ("Focal loss (Yang et al., Lin et al. 2017).", None),
    ],
)
def test_cut_summary(paragraph, cut):
    assert cut_summary(paragraph) == cut


def test_summaries_are_not_cut_at_an_abbreviation():
    """autosummary ends a summary at the first ". ": "Fig. 3" or "e.g. x" would cut it."""
    assert len(docstrings()) > 100
    cut = []
    for where, doc in docstrings():
        head = cut_summary(_summary_paragraph(doc))
        if head is not None:
            cut.append(f"{where}: {head!r}")
    assert not cut, (
        "summary lines that autosummary would cut at an abbreviation (reword the first "
        f"sentence): {cut}"
    )


# ------------------------------------------------------------------------ the build


def test_docs_config_is_offline():
    """Intersphinx (the network) is opt-in; notebooks are never executed."""
    conf = (DOCS / "conf.py").read_text(encoding="utf-8")
    assert 'nb_execution_mode = "off"' in conf
    assert "LINKAGE_GCN_DOCS_ONLINE" in conf
    assert '"myst_nb"' in conf and '"myst_parser"' not in conf


def test_index_toctree_lists_every_page():
    """Every page of docs/ is in the index's toctree (Sphinx warns about orphans)."""
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    toctree = index.split("```{toctree}", 1)[1].split("```", 1)[0]
    entries = {line.strip() for line in toctree.splitlines()[1:] if line.strip()}
    entries = {e for e in entries if not e.startswith(":")}
    pages = {p.stem for p in DOCS.glob("*.md") if p.stem != "index"}
    assert pages <= entries, f"pages missing from the index toctree: {sorted(pages - entries)}"


@pytest.mark.slow
def test_sphinx_build(tmp_path):
    """The whole build, warnings as errors, offline (CI runs it as its own step)."""
    pytest.importorskip("sphinx")
    pytest.importorskip("myst_nb")
    pytest.importorskip("numpydoc")
    if shutil.which("sphinx-build") is None:
        pytest.skip("no sphinx-build")
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         "-d", str(tmp_path / "doctrees"), str(DOCS), str(tmp_path / "html")],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-5000:]


def test_every_public_name_has_a_summary():
    """Each public function and class has a docstring, each constant a ``#:`` comment.

    Without one, autosummary shows the docstring of the value's type ("Built-in immutable
    sequence.") as the constant's summary.
    """
    documented = {where for where, _ in docstrings()}
    missing = sorted(
        {canonical(m, n) for m, n in public_names()}
        - documented
        - {f"{m}.{n}" for m, n in public_names() if _module_path(f"{m}.{n}") is not None}
    )
    missing = [w for w in missing if w.startswith("linkage_gcn")]
    assert not missing, f"public names without a docstring or #: comment: {missing}"


def test_root_names_are_the_stubs_objects_whatever_was_imported_first():
    """A root name is the object the stub names, even where a submodule has that name."""
    code = (
        "import importlib, linkage_gcn\n"
        "import linkage_gcn.knn, linkage_gcn.metrics  # submodules imported first\n"
        "for name in linkage_gcn.__all__:\n"
        "    module = linkage_gcn._EXPORTS.get(name)\n"
        "    if module is None:\n"
        "        continue\n"
        "    want = getattr(importlib.import_module('linkage_gcn.' + module), name)\n"
        "    assert getattr(linkage_gcn, name) is want, name\n"
        "from linkage_gcn import knn\n"
        "assert callable(knn) and knn.__module__ == 'linkage_gcn.knn'\n"
        "print('ok')\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-2000:]
