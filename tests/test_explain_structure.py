"""The explanation family's import structure: no cycles, the model imports no renderer.

Read from the source with :mod:`ast` (imports inside functions count, imports under
``if TYPE_CHECKING:`` do not: they never run), and checked in fresh interpreters that
import the family's modules first in different orders.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import convprop.explainer

PACKAGE = Path(convprop.explainer.__file__).parent
RENDERERS = {"render", "sections", "notation", "figures", "page", "animate", "relationships",
             "_page_assets", "_page_mathml", "derivation", "command"}


def _runtime_imports(tree: ast.AST) -> set[str]:
    """Sibling modules this module imports when it runs (``from . import x``, ``from .x import``)."""
    out: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                out.add(node.module.split(".")[0])
            else:
                out.update(a.name for a in node.names)
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and \
                node.module.startswith("convprop.explainer."):
            out.add(node.module.split(".")[2])
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return out


def _graph() -> dict[str, set[str]]:
    return {p.stem: _runtime_imports(ast.parse(p.read_text(encoding="utf-8")))
            for p in PACKAGE.glob("*.py") if p.stem != "__init__"}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as a path, or None."""
    state: dict[str, int] = {}

    def walk(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [node, nxt] if nxt in path else [node, nxt]
            if nxt not in state:
                found = walk(nxt, path + [node])
                if found:
                    return found
        state[node] = 2
        return None

    for n in sorted(graph):
        if n not in state:
            found = walk(n, [])
            if found:
                return found
    return None


def test_the_family_has_no_import_cycle():
    graph = _graph()
    assert {"model", "derivation", "render", "sections", "figures", "page"} <= set(graph)
    assert _cycle(graph) is None, _cycle(graph)


def test_the_model_imports_none_of_its_renderers_and_they_import_the_model():
    graph = _graph()
    assert not graph["model"] & RENDERERS, graph["model"]
    assert {"model", "render", "figures"} <= graph["derivation"]
    for renderer in ("render", "sections", "figures", "page", "animate"):
        assert "derivation" not in graph[renderer], renderer
    assert not any("command" in deps for name, deps in graph.items()), "nothing imports the CLI"


def test_the_cycle_finder_finds_a_cycle():  # the check above can fail
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) is not None
    assert _cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("first", ["render", "page"])
def test_any_module_imported_first_leaves_the_public_api_working(first):
    code = (f"import convprop.explainer.{first}\n"
            "import convprop\n"
            "from convprop.explainer.derivation import Derivation, explain\n"
            "from convprop.explainer.model import DerivationModel\n"
            "d = convprop.explain()\n"
            "assert isinstance(d, Derivation) and isinstance(d, DerivationModel)\n"
            "assert 'z_{1,1}' in d.to_text() and d.to_latex().startswith('\\\\documentclass')\n"
            "assert d._repr_markdown_() == d.to_markdown()\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
