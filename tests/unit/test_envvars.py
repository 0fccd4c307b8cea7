"""One list of environment variable names: the package reads only those, the scripts derive
theirs from it, docs/picsellia.md documents the platform's."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from pictrain import envvars
from pictrain.job import DEFAULT_STOP_TIMEOUT_S
from pictrain.platform.downloads import DOWNLOAD_WORKERS
from pictrain.platform.env import DEFAULT_HOST
from pictrain.platform.retry import DEFAULT_BASE_DELAY_S
from pictrain.train.checkpoint import DEFAULT_INTERVAL_MINUTES
from pictrain.train.relay import DEFAULT_STALL_MINUTES

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "shared" / "src" / "pictrain"
# Reading the environment anywhere else would name a variable outside the list.
ENV_READ = re.compile(r"environ\.get\(|environ\[|getenv\(|\"PICTRAIN_[A-Z_]+\"")


def test_the_run_script_table_is_generated_from_the_list() -> None:
    generated = subprocess.run(
        [sys.executable, "-m", "pictrain.envvars", "--shell"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert (REPO / "scripts" / "platform-env.sh").read_text() == generated, (
        "regenerate: python -m pictrain.envvars --shell > scripts/platform-env.sh"
    )


def test_no_module_reads_a_variable_of_its_own() -> None:
    offenders = [
        f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "envvars.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if ENV_READ.search(line)
    ]
    assert not offenders, offenders


def test_scripts_and_tests_spell_no_name_of_their_own() -> None:
    """They import the names too (`MODEL_CONFIG.name`), so a renamed variable cannot leave a
    test setting one the package no longer reads. PICTRAIN_TEST_* configure the test harness."""
    spelled = re.compile(r"[\"'](PICTRAIN_(?!TEST_)[A-Z_]+)[\"']")
    offenders = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for folder in ("scripts", "tests")
        for path in sorted((REPO / folder).rglob("*.py"))
        if path != Path(__file__).resolve()
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if spelled.search(line)
    ]
    assert not offenders, offenders


def test_the_docs_document_every_platform_name() -> None:
    doc = (REPO / "docs" / "picsellia.md").read_text()
    table = doc[doc.index("## The variables a job reads") :]
    for var in envvars.PLATFORM.values():
        row = next((line for line in table.splitlines() if f"| `{var.name}` |" in line), "")
        assert row, f"no docs/picsellia.md row for {var.name}"
        for alias in var.names[1:]:
            assert f"`{alias}`" in row, (var.name, alias)


def test_first_non_empty_name_wins() -> None:
    var = envvars.EnvVar(("a", "B"), "")
    assert var.read({"a": "  ", "B": " x "}) == "x"
    assert var.read({"a": "1", "B": "2"}) == "1"
    assert var.read({}) is None


DEFAULTS = [
    (envvars.PLATFORM["host"], DEFAULT_HOST),
    (envvars.CHECKPOINT_MINUTES, DEFAULT_INTERVAL_MINUTES),
    (envvars.STOP_TIMEOUT, DEFAULT_STOP_TIMEOUT_S),
    (envvars.DDP_STALL_MINUTES, DEFAULT_STALL_MINUTES),
    (envvars.DOWNLOAD_WORKERS, DOWNLOAD_WORKERS),
    (envvars.RETRY_BASE_DELAY, DEFAULT_BASE_DELAY_S),
]


@pytest.mark.parametrize(("var", "default"), DEFAULTS, ids=[var.name for var, _ in DEFAULTS])
def test_the_documented_default_is_the_one_used(var: envvars.EnvVar, default: object) -> None:
    shown = default if isinstance(default, str) else format(default, "g")
    assert f"default {shown}" in var.doc, (var.doc, default)
