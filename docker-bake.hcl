# All pictrain images, the single source of truth for how they are built.
#
#   docker buildx bake --print                       # the resolved config (no daemon needed)
#   docker buildx bake                               # group "default": base + every model image
#   docker buildx bake yolov8-detection              # one image (its base is built in the same run)
#   CUDA=13.0 docker buildx bake                     # the CUDA 13 flavour
#   REGISTRY=ghcr.io/acme TAG=0.2.0 docker buildx bake --push
#   BASE_IMAGE=pictrain-stand-in/cuda:bookworm docker buildx bake base   # a local stand-in base
#   GIT_SHA=$(git rev-parse HEAD) docker buildx bake    # the commit in the image (make does it)
#
# `make images`, `make image-<name>` wrap these. A new model image = a folder images/<name>/
# (the four-line Dockerfile + model.toml + README.md) + its name in MODEL_IMAGES
# (docs/images.md); tests/images/test_static.py checks that every folder has a target.

variable "REGISTRY" {
  # image names are "${REGISTRY}/<target>": a registry path for CI, a plain prefix locally
  default = "pictrain"
}

variable "TAG" {
  # the release; keep equal to shared/pyproject.toml's version (a test checks it)
  default = "0.1.0"
}

variable "CUDA" {
  # "12.8" (torch 2.10, drivers >= 525 through CUDA minor-version compatibility, or >= 570 without
  # it) or "13.0" (torch >= 2.11, CUDA 13.x, drivers >= 580). Anything else is an error.
  default = "12.8"
}

variable "BASE_IMAGE" {
  # empty: the nvidia/cuda base that matches CUDA; set it to build on something else (a mirror,
  # or the local stand-in that tests use where no registry is reachable)
  default = ""
}

variable "PLATFORMS" {
  # comma-separated; linux/arm64 works too (torch has aarch64 CUDA wheels) but doubles the build
  default = "linux/amd64"
}

variable "UV_VERSION" {
  # the one pin of uv: the images build with it, the Makefile (hence CI) installs it
  default = "0.13.9"
}

variable "CA_CERT" {
  # a CA bundle for TLS-intercepting proxies, passed as the optional build secret "ca"
  # (never stored in a layer); empty: none
  default = ""
}

variable "GIT_SHA" {
  # the commit built: the revision label and PICTRAIN_GIT_SHA (the run manifest's git_sha);
  # `make images` and CI set it, a bare `docker buildx bake` leaves it empty (git_sha null)
  default = ""
}

variable "SOURCE_URL" {
  default = "https://github.com/picsellia/pictrain"
}

variable "CREATED" {
  # RFC 3339 build date for the OCI label; CI sets it (empty keeps builds reproducible)
  default = ""
}

variable "MODEL_IMAGES" {
  # comma-separated folders of images/; the targets of group "default" (a test checks the list
  # against the folders)
  default = "yolov8-detection,yolov8-segmentation,yolov8-classification,yolo11-detection,yolo11-segmentation,yolo11-classification,yolo26-detection,yolo26-segmentation,yolo26-classification,rtdetr-detection"
}

# CUDA flavour -> pyproject extra, base image tag, image tag suffix.
function "torch_extra" {
  params = [cuda]
  result = { "12.8" = "cu128", "13.0" = "cu130" }[cuda]
}

function "cuda_base" {
  params = [cuda]
  result = {
    "12.8" = "nvidia/cuda:12.8.1-base-ubuntu24.04",
    "13.0" = "nvidia/cuda:13.0.2-base-ubuntu24.04",
  }[cuda]
}

function "image" {
  # "<registry>/<name>:<tag>-cuXYZ" and the moving "<registry>/<name>:cuXYZ"; never only "latest"
  params = [name]
  result = [
    "${REGISTRY}/${name}:${TAG}-${torch_extra(CUDA)}",
    "${REGISTRY}/${name}:${torch_extra(CUDA)}",
  ]
}

group "default" {
  targets = concat(["base"], split(",", MODEL_IMAGES))
}

group "all" {
  targets = ["default"]
}

target "_common" {
  platforms = split(",", PLATFORMS)
  # empty values are left out, not written as empty labels
  labels = merge(
    {
      "org.opencontainers.image.vendor"        = "pictrain"
      "org.opencontainers.image.version"       = "${TAG}-${torch_extra(CUDA)}"
      "org.opencontainers.image.source"        = SOURCE_URL
      "org.opencontainers.image.url"           = SOURCE_URL
      "org.opencontainers.image.documentation" = "${SOURCE_URL}/blob/main/docs/images.md"
      "org.opencontainers.image.licenses"      = "Apache-2.0"
      "ai.picsellia.pictrain.cuda"             = CUDA
    },
    GIT_SHA != "" ? { "org.opencontainers.image.revision" = GIT_SHA } : {},
    CREATED != "" ? { "org.opencontainers.image.created" = CREATED } : {},
  )
}

target "base" {
  inherits   = ["_common"]
  context    = "."
  dockerfile = "images/base/Dockerfile"
  target     = "base"
  args = {
    BASE_IMAGE  = BASE_IMAGE != "" ? BASE_IMAGE : cuda_base(CUDA)
    TORCH_EXTRA = torch_extra(CUDA)
    UV_VERSION  = UV_VERSION
    GIT_SHA     = GIT_SHA
    # what the NVIDIA container toolkit checks against the driver: the major only (see Dockerfile)
    NVIDIA_REQUIRE_CUDA = "cuda>=${split(".", CUDA)[0]}.0"
  }
  secret = CA_CERT != "" ? ["id=ca,src=${CA_CERT}"] : []
  labels = {
    "org.opencontainers.image.title"       = "pictrain-base"
    "org.opencontainers.image.description" = "pictrain base: CUDA ${CUDA} runtime (torch's), Python venv with torch, ultralytics, pictrain"
    "org.opencontainers.image.base.name"   = BASE_IMAGE != "" ? BASE_IMAGE : cuda_base(CUDA)
  }
  tags = image("base")
}

# A model image: images/<name>/ on top of the base target of the same bake run (no push needed).
target "_model" {
  inherits = ["_common"]
  contexts = { pictrain-base = "target:base" }
  args     = { BASE_IMAGE = "pictrain-base" }
  labels   = { "org.opencontainers.image.base.name" = "${REGISTRY}/base:${TAG}-${torch_extra(CUDA)}" }
}

# One target per folder in MODEL_IMAGES, all alike: an image is its folder's model.toml.
target "model" {
  name     = img
  matrix   = { img = split(",", MODEL_IMAGES) }
  inherits = ["_model"]
  context  = "images/${img}"
  tags     = image(img)
  labels   = { "org.opencontainers.image.title" = "pictrain-${img}" }
}
