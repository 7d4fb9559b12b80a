"""The package's shape: each stage in its room, only Kedro's files at the root, no import circle."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "src" / "classwise"
KEDRO_ROOT_FILES = {"__init__.py", "__main__.py", "settings.py", "pipeline_registry.py", "cli.py"}
ROOMS = {"core", "data", "models", "training", "evaluation", "diagnosis", "serving", "ablation", "framework",
         "pipelines"}


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.with_suffix("").relative_to(PACKAGE.parent).parts)
        modules[name.removesuffix(".__init__")] = path
    return modules


def _imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the package's modules it imports, at any depth of the file (function bodies too),
    except under ``if TYPE_CHECKING:``, which never runs."""
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        typing_only = {id(n) for block in ast.walk(tree)
                       if isinstance(block, ast.If) and getattr(block.test, "id", "") == "TYPE_CHECKING"
                       for n in ast.walk(block)}
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("classwise"):
                subs = [f"{node.module}.{alias.name}" for alias in node.names]
                targets = [s for s in subs if s in modules] + ([node.module] if any(s not in modules for s in subs)
                                                               else [])
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names if alias.name.startswith("classwise")]
            else:
                continue
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    circles, done = [], set()

    def walk(node: str, path: list[str]) -> None:
        if node in path:
            circles.append(path[path.index(node):] + [node])
            return
        if node in done:
            return
        for target in sorted(graph[node]):
            walk(target, path + [node])
        done.add(node)

    for node in sorted(graph):
        walk(node, [])
    return circles


def test_no_import_circle_anywhere_in_the_package():
    assert _circles(_imports(_modules())) == []


def test_the_circle_finder_finds_a_circle():
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]


def test_the_package_root_holds_only_what_kedro_needs_and_the_rooms():
    files = {p.name for p in PACKAGE.iterdir() if p.is_file() and p.suffix == ".py"}
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert files == KEDRO_ROOT_FILES
    assert folders == ROOMS


def test_every_module_opens_with_a_line_on_its_job():
    missing = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if not ast.get_docstring(ast.parse(p.read_text()))]
    assert missing == []


def test_the_library_never_imports_the_pipelines():
    graph = _imports(_modules())
    library = [m for m in graph if m.count(".") and m.split(".")[1] in ROOMS - {"pipelines", "framework"}]
    assert [(m, t) for m in library for t in graph[m] if t.startswith("classwise.pipelines")] == []
