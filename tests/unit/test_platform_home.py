"""One home for the platform: `pictrain.platform` is the only part of the package that imports
the picsellia SDK, and it makes the SDK's client in one place, so the job and the workflow
commands share one connection, one retry policy and one account of the SDK's own retries.

Static (the source's import statements), so no lazy import inside a function slips through.
Outside the package, the benchmark that compares pictrain with the SDK's own download and
evaluation calls (`scripts/bench/platform_calls.py`) imports the SDK on purpose: it measures it.

And no folder loop: the package's folders (data/, platform/...) and its top-level modules import
each other in one direction only, lazy imports included, so each layer reads without the ones
above it (docs/architecture.md).
"""

from __future__ import annotations

import ast
import graphlib
import itertools
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "shared" / "src" / "pictrain"
HOME = PACKAGE / "platform"
SCRIPTS = REPO / "scripts"
MEASURES_THE_SDK = {SCRIPTS / "bench" / "platform_calls.py"}
SDK = "picsellia"


def imports(path: Path) -> list[tuple[str, int]]:
    """(module, line) of every absolute import, `from a.b import c` as `a.b` and `a.b.c`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module, node.lineno))
            found += [(f"{node.module}.{alias.name}", node.lineno) for alias in node.names]
    return found


def sdk_imports(path: Path) -> list[int]:
    """Line numbers of `import picsellia...` and `from picsellia... import ...`."""
    lines = [line for name, line in imports(path) if name == SDK or name.startswith(f"{SDK}.")]
    return sorted(set(lines))


def folder_graph(package: Path) -> dict[str, dict[str, set[str]]]:
    """folder -> the folders it imports -> the imports that tie them (`a.py -> b.py`). A
    folder is a sub-package; a module at the top is a folder of its own."""
    files = {_module(path, package): path for path in package.rglob("*.py")}
    graph: dict[str, dict[str, set[str]]] = {_folder(m): {} for m in files}
    for module, path in files.items():
        for name, _ in imports(path):
            if name in files and _folder(name) != _folder(module):
                tie = f"{path.relative_to(package)} -> {files[name].relative_to(package)}"
                graph[_folder(module)].setdefault(_folder(name), set()).add(tie)
    return graph


def _module(path: Path, package: Path) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _folder(module: str) -> str:
    return module.split(".")[1] if "." in module else module


def folder_loop(package: Path) -> list[str]:
    """One loop of folders, each step with the imports that make it, or []."""
    graph = folder_graph(package)
    try:
        graphlib.TopologicalSorter({k: set(v) for k, v in graph.items()}).prepare()
    except graphlib.CycleError as loop:
        steps = loop.args[1]  # [a, ..., a], each importing the one before it
        return [f"{b} -> {a}: {sorted(graph[b][a])}" for a, b in itertools.pairwise(steps)]
    return []


def test_only_the_platform_package_imports_the_sdk() -> None:
    sources = [*PACKAGE.rglob("*.py"), *SCRIPTS.rglob("*.py")]
    outside = {
        str(path.relative_to(REPO)): lines
        for path in sources
        if not path.is_relative_to(HOME)
        and path not in MEASURES_THE_SDK
        and (lines := sdk_imports(path))
    }
    assert not outside, f"import the SDK through pictrain.platform, not here: {outside}"


def test_the_check_sees_an_import_wherever_it_hides(tmp_path: Path) -> None:
    source = tmp_path / "module.py"
    source.write_text(
        "import os\n\ndef f():\n    from picsellia.types.enums import Framework\n"
        "    import picsellia.exceptions as px\n\nfrom pictrain.platform import enums\n"
    )
    assert sdk_imports(source) == [4, 5]


def test_the_sdk_client_is_made_in_one_place() -> None:
    """`Client(...)`: connect.py makes it, with the session that keeps the SDK from re-sending
    a POST whose reply was lost."""
    makers = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Client":
                makers.append(str(path.relative_to(PACKAGE)))
    assert makers == ["platform/connect.py"]


def test_no_folder_loop() -> None:
    assert not (loop := folder_loop(PACKAGE)), "a folder loop:\n" + "\n".join(loop)


def test_the_check_sees_a_loop_through_a_lazy_import(tmp_path: Path) -> None:
    package = tmp_path / "pictrain"
    for folder in ("data", "platform"):
        (package / folder).mkdir(parents=True)
    (package / "params.py").write_text("from pictrain.platform.base import NAME\n")
    (package / "platform" / "base.py").write_text("from pictrain.data import splits\n")
    (package / "data" / "splits.py").write_text("def f():\n    import pictrain.params\n")
    assert sorted(folder_loop(package)) == [
        "data -> params: ['data/splits.py -> params.py']",
        "params -> platform: ['params.py -> platform/base.py']",
        "platform -> data: ['platform/base.py -> data/splits.py']",
    ]
