# Every entry point of the project. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Tool pins, each in one place: uv in docker-bake.hcl (the images build with it), hadolint in
# shared/pyproject.toml's dev group (uv.lock; `make setup` installs it with ruff and pytest).
UV_VERSION := $(shell sed -n '/^variable "UV_VERSION"/,/^}/s/^ *default = "\(.*\)"/\1/p' docker-bake.hcl)
UV := $(or $(shell command -v uv 2>/dev/null),$(CURDIR)/.tools/bin/uv)
VENV := $(CURDIR)/.venv
PY := $(VENV)/bin/python
export UV_PROJECT_ENVIRONMENT := $(VENV)
# PYTHONDONTWRITEBYTECODE is common on CI machines: without compiled bytecode every process
# spends ~10 s recompiling torch.
export UV_COMPILE_BYTECODE := 1

TASK ?= detect
DEMO_DIR ?= data/demo-$(TASK)

.PHONY: help setup demo test lint emulator bench platform-demo

# Targets per image are rules of the form `$(NAMES): image-%: ...`; listed with <image> for %.
help: ## list the entry points
	@grep -hE '^(\$$\([A-Z_]+\): )?[a-zA-Z0-9_%-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^\$$\([A-Z_]+\): //' \
		| awk -F':.*## ' '{sub("%", "<image>", $$1); printf "  make %-22s %s\n", $$1, $$2}'
	@echo "  <image>: $(IMAGE_NAMES)"

$(CURDIR)/.tools/bin/uv:
	python3 -m venv $(CURDIR)/.tools
	$(CURDIR)/.tools/bin/pip install -q uv==$(UV_VERSION)

$(VENV)/.synced: shared/pyproject.toml shared/uv.lock | $(UV)
	$(UV) sync --project shared --frozen --all-groups
	touch $@

setup: $(VENV)/.synced ## create .venv from the lock file

demo: setup ## synthetic dataset -> train (GPU if present, else CPU) -> evaluate -> export (TASK=detect|segment|classify|pose|obb)
	$(VENV)/bin/pictrain demo --task $(TASK)

emulator: setup ## serve the Picsellia API emulator, seeded with the demo dataset (make emulator SEED=dir)
	@test -d "$(or $(SEED),$(DEMO_DIR))" || $(VENV)/bin/pictrain demo --task $(TASK) --data $(DEMO_DIR) --data-only
	$(PY) -m tests.emulator --port $(or $(PORT),8080) --seed $(or $(SEED),$(DEMO_DIR))

platform-demo: setup ## README "From data to deployment" against the emulator, no account (a few minutes)
	$(PY) -m scripts.platform_demo

# Lint first: .ci/run (CI) runs exactly `make test`, so the gate that runs is the whole gate.
# Building and running images is `make test-images`' job, even where a Docker daemon answers.
test: lint ## lint, then every test but the image builds (what CI runs)
	$(PY) -m pytest -m "not images"

bench: setup ## pictrain vs the obvious alternative, same process -> docs/benchmarks.md + .json (BENCH_ARGS=--large: target sizes)
	$(PY) -m scripts.bench $(BENCH_ARGS)

lint: setup ## ruff check + format check, hadolint on every Dockerfile
	$(PY) -m ruff check shared tests scripts
	$(PY) -m ruff format --check shared tests scripts
	$(VENV)/bin/hadolint --config images/hadolint.yaml images/*/Dockerfile

# --- images -------------------------------------------------------------------------------------
# Docker images (docs/images.md): docker-bake.hcl is the source of truth, these wrap it.
# Where no docker CLI with buildx is installed, `make docker-tools` unpacks one into .tools/docker
# (Debian's packages) and `make docker-daemon` starts its dockerd (root).
DOCKER_TOOLS := $(CURDIR)/.tools/docker
ifndef DOCKER
DOCKER := $(shell docker buildx version >/dev/null 2>&1 && echo docker || echo $(DOCKER_TOOLS)/bin/docker)
endif
IMAGE_NAMES := $(patsubst images/%/,%,$(filter-out images/base/,$(sort $(dir $(wildcard images/*/Dockerfile)))))
IMAGE_TARGETS := $(addprefix image-,$(IMAGE_NAMES))
TEST_IMAGE_TARGETS := $(addprefix test-image-,$(IMAGE_NAMES))
SHELL_TARGETS := $(addprefix shell-,$(IMAGE_NAMES))

# Bake variables (docker-bake.hcl): the environment of `docker buildx bake` sets them.
CUDA ?= 12.8
REGISTRY ?= pictrain
TAG ?= $(shell sed -n 's/^version = "\(.*\)"/\1/p' shared/pyproject.toml)
BASE_IMAGE ?=
# The host's CA bundle, an optional build secret (TLS-intercepting proxies); never in a layer.
CA_CERT ?= $(firstword $(wildcard $(SSL_CERT_FILE) /etc/ssl/certs/ca-certificates.crt))
# STAND_IN=1: build on the local stand-in base (scripts/make-stand-in-base.sh), for machines that
# reach no container registry.
STAND_IN ?=
STAND_IN_IMAGE := pictrain-stand-in/cuda:bookworm
# The commit built, baked as PICTRAIN_GIT_SHA (the run manifest's git_sha).
GIT_SHA ?= $(shell git rev-parse HEAD 2>/dev/null)
# A folder of the pinned pretrained <model>.pt files, for builders that cannot reach the release
# (docker-bake.hcl PRETRAINED_DIR); empty: downloaded at build.
PRETRAINED_DIR ?=
BAKE_ENV = CUDA=$(CUDA) REGISTRY=$(REGISTRY) TAG=$(TAG) CA_CERT=$(CA_CERT) \
	BASE_IMAGE=$(if $(STAND_IN),$(STAND_IN_IMAGE),$(BASE_IMAGE)) GIT_SHA=$(GIT_SHA) \
	PRETRAINED_DIR=$(PRETRAINED_DIR)
# Proxies reach build steps as the predefined build args (not kept in the image's history).
BAKE_PROXY = $(foreach v,HTTP_PROXY HTTPS_PROXY NO_PROXY http_proxy https_proxy no_proxy,\
	$(if $($(v)),--set '*.args.$(v)=$($(v))'))
BAKE = $(BAKE_ENV) $(DOCKER) buildx bake $(BAKE_PROXY)
FLAVOUR = $(if $(filter 13.0,$(CUDA)),cu130,cu128)

# run-local: EXP is a Picsellia experiment id, or a local dataset folder (no Picsellia needed).
IMAGE ?= yolov8-detection
EXP ?=
ENV_FILE ?= .env
RUN_IMAGE = $(if $(findstring :,$(IMAGE)),$(IMAGE),$(REGISTRY)/$(IMAGE):$(TAG)-$(FLAVOUR))
GPU_FLAGS ?= $(if $(shell command -v nvidia-smi 2>/dev/null),--gpus all)
# extra `docker run` flags, e.g. RUN_FLAGS=--network=host to reach `make emulator` on this machine
RUN_FLAGS ?=

.PHONY: docker-tools docker-daemon stand-in-base images images-print run-local test-images \
	$(IMAGE_TARGETS) $(TEST_IMAGE_TARGETS) $(SHELL_TARGETS)

docker-tools: ## unpack docker + buildx + dockerd into .tools/docker (when none is installed)
	@if [ "$(DOCKER)" = "$(DOCKER_TOOLS)/bin/docker" ]; then scripts/docker-tools.sh; fi

docker-daemon: docker-tools ## make sure a Docker daemon answers (starts .tools/docker's, as root)
	@DOCKER_TOOLS_DIR=$(DOCKER_TOOLS) scripts/docker-daemon.sh >/dev/null

stand-in-base: docker-daemon ## import the local stand-in for nvidia/cuda (debootstrap + docker import)
	DOCKER=$(DOCKER) scripts/make-stand-in-base.sh

images-print: docker-tools ## show the resolved bake config (no daemon needed)
	$(BAKE) --print

images: docker-daemon $(if $(STAND_IN),stand-in-base) ## build every image (CUDA=12.8|13.0, STAND_IN=1, PRETRAINED_DIR=)
	$(BAKE) default

$(IMAGE_TARGETS): image-%: docker-daemon $(if $(STAND_IN),stand-in-base) ## build one image (and its base)
	$(BAKE) $*

$(SHELL_TARGETS): shell-%: image-% ## build one image, then a bash shell in it (GPU_FLAGS, RUN_FLAGS)
	$(DOCKER) run --rm -i $$(test -t 0 && echo -t) $(GPU_FLAGS) --ipc host $(RUN_FLAGS) \
		$(REGISTRY)/$*:$(TAG)-$(FLAVOUR) bash

run-local: ## run an image like Picsellia does: make run-local EXP=<experiment id | dataset dir> [IMAGE=...]
	@test -n "$(EXP)" || { echo "usage: make run-local EXP=<experiment id | dataset folder> [IMAGE=$(IMAGE)]" >&2; exit 2; }
	@mkdir -p runs
	@if [ -d "$(EXP)" ]; then \
		set -x; $(DOCKER) run --rm $$(test -t 0 && echo -it) $(GPU_FLAGS) --ipc host $(RUN_FLAGS) \
			$(if $(filter 0,$(shell id -u)),,--user $(shell id -u):0) \
			-v "$(abspath $(EXP))":/data:ro -v "$(CURDIR)/runs":/workspace/runs \
			$(RUN_IMAGE) pictrain run --local /data; \
	else \
		test -f "$(ENV_FILE)" || { echo "run-local: $(ENV_FILE) with API_TOKEN and ORGANIZATION_ID is needed" >&2; exit 2; }; \
		scripts/docker-run-env.sh "$(ENV_FILE)" "$(EXP)" -- $(DOCKER) run --rm $$(test -t 0 && echo -it) $(GPU_FLAGS) $(RUN_FLAGS) \
			--ipc host --name "pictrain-$(EXP)" $(RUN_IMAGE); \
	fi

# The static image tests (bake --print, Dockerfiles) run in `make test` too; where no docker
# buildx is installed, the bake ones skip with the reason (`make docker-tools` unpacks one).
test-images: setup docker-daemon ## image tests: build on a stand-in base, run the images
	DOCKER=$(DOCKER) $(PY) -m pytest tests/images -v

$(TEST_IMAGE_TARGETS): test-image-%: setup docker-daemon ## the image tests of one image (all are built: they share the base)
	DOCKER=$(DOCKER) $(PY) -m pytest tests/images -v -k '[$*]'
