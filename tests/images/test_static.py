"""Static checks of the images: bake file, Dockerfiles, model configs. No Docker daemon needed."""

from __future__ import annotations

import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from pictrain.envvars import MODEL_CONFIG, WEIGHTS_DIR
from tests.images.build_inputs import IMAGES_DIR, MODEL_IMAGES, PROCESSING_IMAGES
from tests.images.dockerutil import REPO, buildx_cli

BAKE = REPO / "docker-bake.hcl"
BAKE_VARIABLES = {
    "CUDA",
    "TAG",
    "REGISTRY",
    "BASE_IMAGE",
    "PLATFORMS",
    "CA_CERT",
    "GIT_SHA",
    "PRETRAINED_DIR",
    "PRETRAINED_URL",
}


def bake_print(*targets: str, **variables: str) -> dict:
    """`docker buildx bake --print` with the daemon pointed at nothing: it must not need one."""
    cli = buildx_cli()
    if cli is None:
        pytest.skip(
            "no docker buildx installed: `make docker-tools` unpacks one (`make test` does not)"
        )
    env = {k: v for k, v in os.environ.items() if k not in BAKE_VARIABLES}
    env.update(variables, DOCKER_HOST="unix:///nonexistent/docker.sock")
    proc = subprocess.run(
        [*cli, "bake", "-f", str(BAKE), "--print", *targets],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if proc.returncode != 0:
        raise AssertionError(f"bake --print failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout)


def test_bake_resolves_without_daemon() -> None:
    config = bake_print()
    targets = config["target"]
    every = {"base", *MODEL_IMAGES, *PROCESSING_IMAGES}
    assert set(config["group"]["default"]["targets"]) == every
    assert set(targets) == every
    base = targets["base"]
    assert base["args"]["BASE_IMAGE"].startswith("nvidia/cuda:12.8")
    assert base["args"]["TORCH_EXTRA"] == "cu128"
    for name, target in targets.items():
        tags = target["tags"]
        assert tags and all(not t.endswith(":latest") for t in tags), tags
        assert any(re.search(r":\d+\.\d+\.\d+.*-cu128$", t) for t in tags), tags
        assert target["labels"]["org.opencontainers.image.source"]
        if name in MODEL_IMAGES:
            assert target["contexts"] == {
                "pictrain-base": "target:base",
                "pretrained": f"images/{name}",  # holds no .pt: every file is downloaded
            }
        if name in PROCESSING_IMAGES:
            assert target["contexts"] == {"pictrain-base": "target:base"}
            assert set(target["args"]) == {"BASE_IMAGE"}
        if name != "base":
            assert target["args"]["BASE_IMAGE"] == "pictrain-base"


def test_every_image_folder_has_a_target_and_config() -> None:
    """Adding a model = a folder (Dockerfile + model.toml) + its name in MODEL_IMAGES; the
    image tests (test_model_images.py) then run it on a dataset of its task."""
    config = bake_print("all")
    for name in MODEL_IMAGES:
        folder = IMAGES_DIR / name
        assert name in config["target"], f"no bake target for images/{name}"
        assert config["target"][name]["context"] == f"images/{name}"
        assert (folder / "model.toml").is_file(), f"images/{name}/model.toml missing"


def test_cuda_flavours() -> None:
    cu13 = bake_print("base", CUDA="13.0")["target"]["base"]
    assert cu13["args"]["TORCH_EXTRA"] == "cu130"
    assert cu13["args"]["BASE_IMAGE"].startswith("nvidia/cuda:13.")
    assert all(t.endswith("cu130") for t in cu13["tags"])
    with pytest.raises(AssertionError, match="bake --print failed"):
        bake_print("base", CUDA="11.0")


def test_base_image_and_registry_overridable() -> None:
    config = bake_print(BASE_IMAGE="local/stand-in:1", REGISTRY="ghcr.io/acme", TAG="9.9.9")
    assert config["target"]["base"]["args"]["BASE_IMAGE"] == "local/stand-in:1"
    assert (
        "ghcr.io/acme/yolov8-detection:9.9.9-cu128" in config["target"]["yolov8-detection"]["tags"]
    )


def test_tag_default_is_the_package_version() -> None:
    version = tomllib.loads((REPO / "shared" / "pyproject.toml").read_text())["project"]["version"]
    assert re.search(
        r'variable "TAG" \{[^}]*default = "' + re.escape(version) + '"', BAKE.read_text()
    ), "docker-bake.hcl TAG default != shared/pyproject version"


def test_git_sha_reaches_the_image_env() -> None:
    """bake variable GIT_SHA -> base build arg -> ENV PICTRAIN_GIT_SHA, which pictrain.artifacts
    writes into the run manifest (test_containers checks it in a built image)."""
    stage = (IMAGES_DIR / "base" / "Dockerfile").read_text().split("AS base\n")[1]
    assert re.search(r'^ARG GIT_SHA=""\nENV PICTRAIN_GIT_SHA=\$\{GIT_SHA\}$', stage, re.M)
    sha = "0123456789abcdef0123456789abcdef01234567"
    base = bake_print("base", GIT_SHA=sha)["target"]["base"]
    assert base["args"]["GIT_SHA"] == sha
    assert base["labels"]["org.opencontainers.image.revision"] == sha


def test_make_images_bakes_the_checkout_sha() -> None:
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=30
    ).stdout.strip()
    if not head:
        pytest.skip("not a git checkout: images get no git sha")
    make = subprocess.run(
        ["make", "--no-print-directory", "-n", "images"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k != "GIT_SHA"},
    )
    assert f"GIT_SHA={head} " in make.stdout, make.stdout + make.stderr


def test_every_processing_folder_has_a_target_and_config() -> None:
    """A processing image = a folder (Dockerfile + processing.toml) + its name in
    PROCESSING_IMAGES; `pictrain register` registers it from processing.toml."""
    from pictrain.workflow.preannotate import available_processings, load_processing_config

    config = bake_print("all")
    assert list(available_processings(IMAGES_DIR)) == PROCESSING_IMAGES
    for name in PROCESSING_IMAGES:
        assert config["target"][name]["context"] == f"images/{name}"
        assert not (IMAGES_DIR / name / "model.toml").exists(), "a model or a processing"
        load_processing_config(IMAGES_DIR / name / "processing.toml")


@pytest.mark.parametrize("name", PROCESSING_IMAGES)
def test_processing_dockerfile_is_thin(name: str) -> None:
    """The base and the command Picsellia runs with no command of its own: the job."""
    text = (IMAGES_DIR / name / "Dockerfile").read_text()
    code = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    assert code == [
        "ARG BASE_IMAGE=non-existing",
        "FROM ${BASE_IMAGE}",
        f'CMD ["pictrain", "{name}"]',
    ]


@pytest.mark.parametrize("name", MODEL_IMAGES)
def test_model_dockerfile_is_thin(name: str) -> None:
    text = (IMAGES_DIR / name / "Dockerfile").read_text()
    code = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    assert len(code) <= 20, "a model image is the base + its config and weights: keep it short"
    assert code[0] == "ARG BASE_IMAGE=non-existing" and code[1] == "FROM ${BASE_IMAGE}"
    assert "ENTRYPOINT" not in text and "CMD" not in text, "the base's entrypoint is the contract"
    assert f"{MODEL_CONFIG.name}=/opt/pictrain/model.toml" in text
    assert f"{WEIGHTS_DIR.name}=/opt/pictrain/weights" in text  # where fetch-weights puts them
    # The build step that fails on a file whose sha256 differs (tests/unit/test_pretrained.py),
    # given every pin bake passes.
    (step,) = [ln for ln in text.replace("\\\n", " ").splitlines() if "fetch-weights" in ln]
    assert step.startswith("RUN ") and step.rstrip().endswith("${PRETRAINED}"), step
    # docs/images.md, "Add a model image": a copy of this one, as it is
    assert text == (IMAGES_DIR / "yolov8-detection" / "Dockerfile").read_text()


@pytest.mark.parametrize("name", MODEL_IMAGES)
def test_model_config_is_valid(name: str) -> None:
    """The package's own loader and parameter model accept the image's config and defaults."""
    config_mod = pytest.importorskip("pictrain.config")
    config = config_mod.load_model_config(IMAGES_DIR / name / "model.toml")
    params = pytest.importorskip("pictrain.params")
    params.parse_parameters({}, config.defaults)


def test_dockerignore_keeps_secrets_out() -> None:
    lines = [
        ln.strip()
        for ln in (REPO / ".dockerignore").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    assert lines[0] == "*", "allow-list: ignore everything, then name what the build needs"
    assert not [ln for ln in lines if ln.startswith("!") and ".env" in ln]
    assert "**/.env" in lines


def _hadolint() -> str | None:
    """The lock file's (the dev group installs it next to this Python), else one on PATH."""
    venv = Path(sys.executable).parent / "hadolint"
    return str(venv) if venv.exists() else shutil.which("hadolint")


@pytest.mark.parametrize(
    "dockerfile", sorted(IMAGES_DIR.glob("*/Dockerfile")), ids=lambda p: p.parent.name
)
def test_hadolint(dockerfile: Path) -> None:
    hadolint = _hadolint()
    if hadolint is None:
        pytest.skip("hadolint not installed (`make setup`: shared/pyproject.toml dev group)")
    proc = subprocess.run(
        [hadolint, "--config", str(IMAGES_DIR / "hadolint.yaml"), str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_run_local_maps_dotenv_to_platform_names(tmp_path: Path) -> None:
    """scripts/docker-run-env.sh: .env names -> the platform's; no token on a command line."""
    token = "tok-" + "x" * 20
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        f'# credentials\nAPI_TOKEN="{token}"\nexport ORGANIZATION_ID=org-1\n'
        "PICSELLIA_HOST=http://h:1\nHOST=not-read\n"  # the package reads no HOST: neither does this
    )
    # stands in for `docker run ...`: prints what docker would receive
    probe = (
        "import json, os, sys; keys = ('api_token', 'organization_id', 'experiment_id', 'host',"
        " 'job_id'); print(json.dumps({'argv': sys.argv[1:],"
        " 'env': {k: os.environ.get(k) for k in keys}}))"
    )
    proc = subprocess.run(
        [
            str(REPO / "scripts" / "docker-run-env.sh"),
            *(str(dotenv), "42", "--", sys.executable, "-c", probe, "run", "IMAGE"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    assert seen["env"] == {
        "api_token": token,
        "organization_id": "org-1",
        "experiment_id": "42",
        "host": "http://h:1",
        "job_id": None,
    }
    flags = seen["argv"][1:-1]
    assert flags[::2] == ["-e"] * 4
    assert sorted(flags[1::2]) == ["api_token", "experiment_id", "host", "organization_id"]
    assert token not in " ".join(seen["argv"]) and token not in proc.stderr


def test_run_local_needs_a_token(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("ORGANIZATION_ID=org-1\n")
    proc = subprocess.run(
        [str(REPO / "scripts" / "docker-run-env.sh"), str(dotenv), "42", "--", "true", "run"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2 and "API_TOKEN" in proc.stderr


# --- pretrained weights: pinned once, in docker-bake.hcl; bake and docs/images.md read it -------

RELEASE_SIZES = "nsmlx"


def _variable_block(name: str) -> str:
    """The body of `variable "NAME" { ... }` in docker-bake.hcl (braces balanced)."""
    text = BAKE.read_text()
    start = text.index(f'variable "{name}" {{') + len(f'variable "{name}" {{')
    depth = 1
    for end, char in enumerate(text[start:], start):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth == 0:
            return text[start:end]
    raise AssertionError(f"variable {name} is not closed")


def pretrained_pins() -> dict[str, dict[str, str]]:
    """image -> {model: sha256 ("" = not pinned)}, in the file's order."""
    block = _variable_block("PRETRAINED")
    return {
        image: dict(re.findall(r'"([\w.-]+)"\s*=\s*"([0-9a-f]*)"', body))
        for image, body in re.findall(r'"([\w.-]+)"\s*=\s*\{([^{}]*)\}', block)
    }


def pretrained_bytes() -> dict[str, int]:
    return {
        m: int(n)
        for m, n in re.findall(r'"([\w.-]+)"\s*=\s*(\d+)', _variable_block("PRETRAINED_BYTES"))
    }


def release_family(model: str) -> list[str]:
    """Every size of `model`'s generation and task: yolov8n-seg -> yolov8{n,s,m,l,x}-seg."""
    if model.startswith("rtdetr-"):
        return ["rtdetr-l", "rtdetr-x"]
    match = re.fullmatch(rf"(.+?)[{RELEASE_SIZES}]((?:-[a-z]+)?)", model)
    assert match, model
    return [f"{match[1]}{size}{match[2]}" for size in RELEASE_SIZES]


def test_every_image_pins_every_size_of_its_family() -> None:
    """Its default model first of all: a run that asks nothing starts pretrained."""
    from pictrain.config import load_model_config
    from pictrain.train.models import check_model_name

    pins = pretrained_pins()
    assert set(pins) == set(MODEL_IMAGES)
    for name in MODEL_IMAGES:
        config = load_model_config(IMAGES_DIR / name / "model.toml")
        assert list(pins[name]) == release_family(config.model), name
        assert pins[name][config.model], f"{name}: its default model {config.model} is not pinned"
        for model, sha256 in pins[name].items():
            assert sha256 == "" or re.fullmatch(r"[0-9a-f]{64}", sha256), (model, sha256)
            check_model_name(config.task, model)  # an architecture of the image's task
    pinned = [sha for family in pins.values() for sha in family.values() if sha]
    assert len(pinned) == len(set(pinned)), "two files cannot have one sha256"


def test_sizes_are_known_only_for_pinned_files() -> None:
    pinned = {m for family in pretrained_pins().values() for m, sha in family.items() if sha}
    sizes = pretrained_bytes()
    assert set(sizes) <= pinned and all(n > 100_000 for n in sizes.values())


def test_weights_come_from_the_release_ultralytics_itself_uses() -> None:
    from ultralytics.utils.downloads import (
        GITHUB_ASSETS_NAMES,
        GITHUB_ASSETS_REPO,
        attempt_download_asset,
    )

    release = inspect.signature(attempt_download_asset).parameters["release"].default
    url = f"https://github.com/{GITHUB_ASSETS_REPO}/releases/download/{release}"
    assert f'default = "{url}"' in _variable_block("PRETRAINED_URL")
    models = {m for family in pretrained_pins().values() for m in family}
    assert {f"{m}.pt" for m in models} <= GITHUB_ASSETS_NAMES


def test_bake_gives_each_image_its_pins_and_the_local_folder() -> None:
    config = bake_print("all", PRETRAINED_DIR="/srv/weights")
    for name, pins in pretrained_pins().items():
        target = config["target"][name]
        given = target["args"]["PRETRAINED"].split()
        assert sorted(given) == sorted(f"{m}={sha}" for m, sha in pins.items() if sha), name
        assert target["args"]["PRETRAINED_URL"].startswith("https://github.com/ultralytics/")
        assert target["contexts"]["pretrained"] == "/srv/weights"


def pretrained_table() -> str:
    """docs/images.md's table of what each image carries, from the pins."""
    sizes = pretrained_bytes()
    rows = ["| image | pretrained weights it carries | size they add |", "|---|---|---|"]
    for name, pins in pretrained_pins().items():
        carried = [m for m, sha in pins.items() if sha]
        missing = [m for m, sha in pins.items() if not sha]
        unsized = [m for m in carried if m not in sizes]
        what = ", ".join(carried) + (f" (not pinned: {', '.join(missing)})" if missing else "")
        size = f"{sum(sizes[m] for m in carried if m in sizes) / 1e6:.1f} MB"
        if unsized:
            size += f" + {', '.join(unsized)} (size not recorded)"
        rows.append(f"| `{name}` | {what} | {size} |")
    return "\n".join(rows)


def test_docs_state_what_each_image_carries_and_what_it_adds() -> None:
    table = pretrained_table()
    assert table in (REPO / "docs" / "images.md").read_text(), f"docs/images.md:\n{table}"
