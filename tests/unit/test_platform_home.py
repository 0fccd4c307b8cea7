"""One home for the platform: `pictrain.platform` is the only part of the package that imports
the picsellia SDK, and it makes the SDK's client in one place, so the job and the workflow
commands share one connection, one retry policy and one account of the SDK's own retries.

Static (the source's import statements), so no lazy import inside a function slips through.
Outside the package, the benchmark that compares pictrain with the SDK's own download and
evaluation calls (`scripts/bench/platform_calls.py`) imports the SDK on purpose: it measures it.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "shared" / "src" / "pictrain"
HOME = PACKAGE / "platform"
SCRIPTS = REPO / "scripts"
MEASURES_THE_SDK = {SCRIPTS / "bench" / "platform_calls.py"}
SDK = "picsellia"


def sdk_imports(path: Path) -> list[int]:
    """Line numbers of `import picsellia...` and `from picsellia... import ...`."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        else:
            continue
        if any(name == SDK or name.startswith(f"{SDK}.") for name in names):
            lines.append(node.lineno)
    return lines


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
