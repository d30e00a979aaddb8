"""The layers of DESIGN.md hold: imports point down only, no cycles, no imports by name, few top-level modules.

``lint-imports`` checks the contracts in ``pyproject.toml``; the rest is read from the source with ``ast``,
function-level imports included (most of ssocred's imports are lazy, to keep start-up fast).
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ssocred"
#: The top-level modules besides ``__init__`` and ``__main__``: leaves that import only ``errors``.
LEAVES = {"errors", "process_args", "socket_protocol", "cliargs"}
LAYERS = {"cli", "process", "daemon", "usecases", "adapters", "model", "emulator"}


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module(p): p for p in PACKAGE.rglob("*.py")}


def _imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The ssocred modules ``path`` imports anywhere (``from ssocred.x import y`` names ``y`` if a module)."""
    found: set[str] = set()
    me = _module(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "ssocred")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            if base.split(".")[0] != "ssocred":
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in known else base)
    found.discard(me)
    return found


def _graph() -> dict[str, set[str]]:
    known = _modules()
    return {name: _imports(path, known) & set(known) for name, path in known.items()}


def test_lint_imports_keeps_every_contract() -> None:
    tool = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert tool, "import-linter is part of the test extra"
    r = subprocess.run([tool, "--config", str(ROOT / "pyproject.toml")], cwd=ROOT, capture_output=True, text=True,
                       timeout=300, check=False)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "0 broken" in r.stdout


def test_no_import_cycles_even_through_function_level_imports() -> None:
    graph = _graph()
    done: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        if node in stack:
            cycles.append([*stack[stack.index(node):], node])
            return
        if node in done:
            return
        for nxt in sorted(graph[node]):
            visit(nxt, [*stack, node])
        done.add(node)

    for name in sorted(graph):
        visit(name, [])
    assert cycles == []


def test_the_graph_is_read_at_all() -> None:
    """The two tests above would pass on an empty graph: make sure it holds the arrows we know of."""
    graph = _graph()
    assert "ssocred.usecases.tokens" in graph["ssocred.process.refresher"]
    assert "ssocred.adapters.store" in graph["ssocred.usecases.credentials"]  # a lazy import
    assert "ssocred.errors" in graph["ssocred.process_args"]


def test_top_level_holds_only_the_entry_points_and_a_few_leaves() -> None:
    top = {p.stem for p in PACKAGE.glob("*.py")}
    assert top == {"__init__", "__main__", *LEAVES}
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"} == LAYERS
    graph = _graph()
    for leaf in LEAVES:
        assert graph[f"ssocred.{leaf}"] <= {"ssocred.errors"}, leaf
    assert graph["ssocred.errors"] == set()


@pytest.mark.parametrize("layer", sorted(LAYERS - {"emulator"}))
def test_package_init_files_hold_a_docstring_at_most(layer: str) -> None:
    tree = ast.parse((PACKAGE / layer / "__init__.py").read_text(encoding="utf-8"))
    body = tree.body
    assert len(body) <= 1 and all(isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) for n in body)


def test_nothing_is_imported_by_a_name_in_a_string() -> None:
    from ssocred.adapters.deferred_imports import READ_UNUSED

    # The one exception loads modules of other packages that it deferred, never one of ssocred.
    assert READ_UNUSED and not [n for n in READ_UNUSED if n.split(".")[0] == "ssocred"]
    offenders = []
    for name, path in _modules().items():
        if name == "ssocred.adapters.deferred_imports":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                func = node.func
                called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if called in ("import_module", "__import__"):
                    offenders.append(f"{name}:{node.lineno}")
    assert offenders == []
