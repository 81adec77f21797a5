"""The package's layers hold and its imports make no circles.

The layers are import-linter contracts in pyproject.toml ([tool.importlinter]); ``lint-imports``
checks the same. import-linter sees imports inside functions too, but not three things this file
checks itself: folders without ``__init__.py`` (namespace packages, which it skips), circles
through a package's own ``__init__``, and names loaded lazily from the package root.
"""

from __future__ import annotations

import ast
from collections import deque
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "src"
ROOT = "headstart"


# -- import-linter ----------------------------------------------------------------------------------

def test_every_folder_of_modules_is_a_regular_package():
    """import-linter leaves out namespace packages: their modules would drop out of every contract."""
    missing = sorted(str(folder.relative_to(SOURCE))
                     for folder in (SOURCE / ROOT).rglob("*")
                     if folder.is_dir() and folder.name != "__pycache__" and any(folder.glob("*.py"))
                     and not (folder / "__init__.py").is_file())
    assert not missing, f"add an __init__.py to {', '.join(missing)}"


def test_the_import_linter_contracts_are_kept(capsys):
    from importlinter import api  # noqa: F401 - importing it configures import-linter (readers, printer)
    from importlinter.application import use_cases

    # cache_dir=None: nothing written into the working tree
    kept = use_cases.lint_imports(config_filename=str(REPO / "pyproject.toml"), cache_dir=None, no_logo=True)
    report = capsys.readouterr().out
    assert kept, "import-linter found imports that break the layers:\n" + report


# -- circles between modules --------------------------------------------------------------------------

def module_name(path: Path, source: Path = SOURCE) -> str:
    parts = list(path.relative_to(source).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def lazy_names(root_init: Path) -> dict[str, str]:
    """The root package's ``_LAZY`` table: public name -> the module that defines it."""
    for node in ast.parse(root_init.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "_LAZY" for t in node.targets):
            return ast.literal_eval(node.value)
    return {}


def import_graph(source: Path = SOURCE) -> dict[str, dict[str, int]]:
    """Every module of the package -> {module it imports: first line}, imports inside functions and
    ``if TYPE_CHECKING`` included. ``from package import name`` points at the submodule where ``name``
    is one, else at the package's ``__init__``; ``import headstart`` followed by ``headstart.fit``
    points at the module the root loads ``fit`` from."""
    paths = {module_name(path, source): path for path in sorted((source / ROOT).rglob("*.py"))}
    lazy = lazy_names(source / ROOT / "__init__.py")
    graph: dict[str, dict[str, int]] = {}

    def existing(name: str) -> str | None:
        while name and name not in paths:
            name = name.rpartition(".")[0]
        return name or None

    for name, path in paths.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        imports: list[tuple[str | None, int]] = []  # (imported module, line)
        root_attributes = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
                           and isinstance(node.value, ast.Name) and node.value.id == ROOT}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] != ROOT:
                        continue
                    imports.append((existing(alias.name), node.lineno))
                    if alias.name == ROOT and alias.asname is None:
                        imports += [(lazy[attribute], node.lineno) for attribute in root_attributes & lazy.keys()]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    package = name if is_package else name.rpartition(".")[0]
                    for _ in range(node.level - 1):
                        package = package.rpartition(".")[0]
                    base = f"{package}.{node.module}" if node.module else package
                else:
                    base = node.module or ""
                if base.split(".")[0] != ROOT:
                    continue
                for alias in node.names:
                    if f"{base}.{alias.name}" in paths:
                        imports.append((f"{base}.{alias.name}", node.lineno))
                    elif base == ROOT and alias.name in lazy:
                        imports.append((lazy[alias.name], node.lineno))
                    else:
                        imports.append((existing(base), node.lineno))
        edges: dict[str, int] = {}
        for target, line in imports:
            if target and target != name:
                edges[target] = min(line, edges.get(target, line))
        graph[name] = edges
    return graph


def circles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The shortest circle through each module that is on one, each circle once and starting at its
    first module by name (Tarjan's strongly connected components, then breadth-first searches)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def connect(start: str) -> None:
        # iterative, so a long chain never meets the recursion limit
        work = [(start, iter(sorted(graph.get(start, {}))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph.get(successor, {})))))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.add(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        groups.append(group)

    for node in sorted(graph):
        if node not in index:
            connect(node)

    found = set()
    for group in groups:
        for start in group:
            previous = {start: None}
            queue = deque([start])
            while queue:
                node = queue.popleft()
                if start in graph[node]:
                    path = [node]
                    while previous[path[-1]] is not None:
                        path.append(previous[path[-1]])
                    path.reverse()
                    first = path.index(min(path))  # the same circle found from another member
                    found.add(tuple(path[first:] + path[:first]))
                    break
                for successor in sorted(graph[node]):
                    if successor in group and successor not in previous:
                        previous[successor] = node
                        queue.append(successor)
    return sorted([*circle, circle[0]] for circle in found)


def chain(graph: dict[str, dict[str, int]], circle: list[str]) -> str:
    return circle[0] + "".join(f" -> {b} (l.{graph[a][b]})" for a, b in zip(circle, circle[1:], strict=False))


def test_no_module_imports_itself_round_a_circle():
    graph = import_graph()
    found = circles(graph)
    assert not found, "import circles (line numbers are the importing module's):\n" + "\n".join(
        chain(graph, circle) for circle in found)


# -- the circle finder itself -------------------------------------------------------------------------

def write_package(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / ROOT / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


@pytest.mark.parametrize("files, expected", [
    ({"__init__.py": "", "a.py": "from headstart import b\n", "b.py": "x = 1\n"}, []),
    # inside a function, and relative
    ({"__init__.py": "", "a.py": "from headstart import b\n", "b.py": "def f():\n    from . import a\n"},
     [["headstart.a", "headstart.b", "headstart.a"]]),
    # a name from a package's __init__, which imports the importer back
    ({"__init__.py": "", "p/__init__.py": "from headstart.p.c import C\nD = 1\n",
      "p/c.py": "from headstart.p import D\nclass C: ...\n"},
     [["headstart.p", "headstart.p.c", "headstart.p"]]),
    # a lazy name of the root, used as an attribute
    ({"__init__.py": "_LAZY = {'fit': 'headstart.api'}\n", "api.py": "from headstart.lab import go\n",
      "lab.py": "def go():\n    import headstart\n    return headstart.fit\n"},
     [["headstart.api", "headstart.lab", "headstart.api"]]),
])
def test_circles_are_found_with_their_chain(tmp_path, files, expected):
    graph = import_graph(write_package(tmp_path, files))
    assert circles(graph) == expected


def test_a_chain_names_each_import_line(tmp_path):
    graph = import_graph(write_package(tmp_path, {"__init__.py": "", "a.py": "import os\nfrom headstart import b\n",
                                                  "b.py": "\n\nimport headstart.a\n"}))
    [circle] = circles(graph)
    assert chain(graph, circle) == "headstart.a -> headstart.b (l.2) -> headstart.a (l.3)"


LONGEST_FUNCTION = 80  # lines; a longer one is doing several things that deserve names


def test_no_function_runs_over_eighty_lines():
    long = []
    for path in sorted((SOURCE / ROOT).rglob("*.py")):
        if "migrations" in path.parts:  # Alembic's generated revisions are data, not logic
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > LONGEST_FUNCTION:
                    long.append(f"{path.relative_to(SOURCE)}:{node.lineno} {node.name}: {lines} lines")
    assert not long, "split these functions:\n" + "\n".join(long)
