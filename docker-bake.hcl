# All pictrain images, the single source of truth for how they are built.
#
#   docker buildx bake --print                       # the resolved config (no daemon needed)
#   docker buildx bake                               # group "default": base + every model image
#   docker buildx bake yolov8-detection              # one image (its base is built in the same run)
#   CUDA=13.0 docker buildx bake                     # the CUDA 13 flavour
#   REGISTRY=ghcr.io/acme TAG=0.2.0 docker buildx bake --push
#   BASE_IMAGE=pictrain-stand-in/cuda:bookworm docker buildx bake base   # a local stand-in base
#   GIT_SHA=$(git rev-parse HEAD) docker buildx bake    # the commit in the image (make does it)
#   PRETRAINED_DIR=/path/to/weights docker buildx bake  # pretrained weights from a local folder
#
# `make images`, `make image-<name>` wrap these. A new model image = a folder images/<name>/
# (the model Dockerfile + model.toml + README.md) + its name in MODEL_IMAGES and its pinned
# weights in PRETRAINED (docs/images.md); a processing image (images/preannotate: Dockerfile +
# processing.toml) is named in PROCESSING_IMAGES. tests/images/test_static.py checks that every
# folder has a target and pins.

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
  default = "yolov8-detection,yolov8-segmentation,yolov8-classification,yolov8-pose,yolov8-obb,yolo11-detection,yolo11-segmentation,yolo11-classification,yolo11-pose,yolo11-obb,yolo26-detection,yolo26-segmentation,yolo26-classification,yolo26-pose,yolo26-obb,rtdetr-detection"
}

variable "PROCESSING_IMAGES" {
  # comma-separated folders of images/ that Picsellia runs as processings (processing.toml), on
  # the same base; also in group "default"
  default = "preannotate"
}

variable "PRETRAINED_URL" {
  # where the images' pretrained weights are downloaded from at build: the ultralytics assets
  # release ultralytics 8.4 itself downloads from (GITHUB_ASSETS_REPO, release v8.4.0)
  default = "https://github.com/ultralytics/assets/releases/download/v8.4.0"
}

variable "PRETRAINED_DIR" {
  # a folder of <model>.pt files for a builder that cannot reach PRETRAINED_URL: the files found
  # there are taken from it, the others downloaded; each is checked against its pin either way.
  # Empty: the image's own folder stands in (it holds no .pt), so every file is downloaded.
  default = ""
}

# The official pretrained weights of each image's family, every size of its generation (COCO
# for detection and segmentation, COCO-keypoints for pose, DOTAv1 for OBB, ImageNet for
# classification), pinned: <model> = the sha256 of PRETRAINED_URL/<model>.pt. An image carries
# each pinned file as /opt/pictrain/weights/<model>.pt; a file whose sha256 differs fails the
# build. "" = no sha256 verified yet: not baked, and that model starts from scratch unless the
# experiment brings weights. Where each value comes from: docs/images.md, "Pretrained weights".
variable "PRETRAINED" {
  default = {
    "yolov8-detection" = {
      "yolov8n" = "f59b3d833e2ff32e194b5bb8e08d211dc7c5bdf144b90d2c8412c47ccfc83b36"
      "yolov8s" = "1f47a78bf100391c2a140b7ac73a1caae18c32779be7d310658112f7ac9aa78a"
      "yolov8m" = "5d4a90cdc7a21786cc59cd19778e9eafff836df9e2da32524737c7ee6efe4fe5"
      "yolov8l" = "64c9115303f6a25575f82200d1b22ec409fa6bd7d08d0313884fc20d919478cd"
      "yolov8x" = "3df4ada6b4dad6d657868f2fdf7faecfb34dcfccf3a25c4b82079064718524c8"
    }
    "yolov8-segmentation" = {
      "yolov8n-seg" = "a7cd8f929e1903d78a12a48efecab430209f18dc46cb96c3599a5980c63c423c"
      "yolov8s-seg" = "0bac0770b55e5eb5b76a61bc535673288dcec36c2bc0cd25ee0d584c632f3413"
      "yolov8m-seg" = "51fa7e5ef385efa6d5b1d8e31b73399be6ed5d7ca71bda4bd4b2794bb445c4f4"
      "yolov8l-seg" = "ca3ec94c445aeaf79c2b57982fb451060f18a7561e2c20b4d26bb9dc1fcabf93"
      "yolov8x-seg" = "c333d6a7aff884ec821050eacdab29871f3edd10d996cf48746a02f8e01f1b5d"
    }
    "yolov8-classification" = {
      "yolov8n-cls" = "11fa19f2aea79bc960d680a13f82f22105982b325eb9e17a4a5e1a9f8245980a"
      "yolov8s-cls" = ""
      "yolov8m-cls" = ""
      "yolov8l-cls" = ""
      "yolov8x-cls" = ""
    }
    "yolov8-pose" = {
      "yolov8n-pose" = "c6fa93dd1ee4a2c18c900a45c1d864a1c6f7aba75d84f91648a30b7fb641d212"
      "yolov8s-pose" = "234314cd8baf62616791aceb9ea6ad5c19f26cf6c0d8f3a1bfce1e23b186cfb3"
      "yolov8m-pose" = "dbe539ea268db2534390942cfdf206e521f376f19e5415967a57f6a2ddfa3c90"
      "yolov8l-pose" = ""
      "yolov8x-pose" = ""
    }
    "yolov8-obb" = {
      "yolov8n-obb" = "fa6e4cd2691f132875c143135affaa66b5d89394ebb1d07d19770a9b6382c1b8"
      "yolov8s-obb" = ""
      "yolov8m-obb" = ""
      "yolov8l-obb" = ""
      "yolov8x-obb" = ""
    }
    "yolo11-detection" = {
      "yolo11n" = "0ebbc80d4a7680d14987a577cd21342b65ecfd94632bd9a8da63ae6417644ee1"
      "yolo11s" = "85a76fe86dd8afe384648546b56a7a78580c7cb7b404fc595f97969322d502d5"
      "yolo11m" = "d5ffc1a674953a08e11a8d21e022781b1b23a19b730afc309290bd9fb5305b95"
      "yolo11l" = "9ebd0e09d59811db4b1d61e2bc6730649608b1ac47f8dd01e2da6bca7c20023f"
      "yolo11x" = "7bc158aa95c0ebfdd87f70f01653c1131b93e92522dbe15c228bcd742e773a24"
    }
    "yolo11-segmentation" = {
      "yolo11n-seg" = "55ed65c56c91713d23e8402371c6c49a6fd84f257f7dce452e8d70e41dcbe152"
      "yolo11s-seg" = "1caa81c0195412efa411b632bcfb8c184939dddb6ae41f6a80c41b211ff257c3"
      "yolo11m-seg" = "eb9a06f63e2206c35d68d839b08c362429ebecf933ad54c1ad68b2fd001c17cf"
      "yolo11l-seg" = "cabe90049795dfc9a370b7934d6dec7f6b9e44a20e573b0ff81b7e205512c872"
      "yolo11x-seg" = "4e53a5f5fd3ee2ae3361c62169c6bb3ed4ae251dd0e57606e230955aa52d919c"
    }
    "yolo11-classification" = {
      "yolo11n-cls" = "c62d41bf9625777760018bf914d2e6cd472420ccd01706d97a61cb6c82502bd7"
      "yolo11s-cls" = "e2b605d1c8c212b434a75a32759a6f7adf1d2b29c35f76bdccd4c794cb653cf2"
      "yolo11m-cls" = "80583b974e44292d56fc5ba4d26cd0bb04e77edc8bbf4317f7ce678147156dd5"
      "yolo11l-cls" = "6b56513a5d8bdae6b8f0a36dacaf01b26d5a522ba1b34197c3bac9fa6463366c"
      "yolo11x-cls" = "5b99af0f075efcd88349746fad4ff0a88cd591712b578a887286790544bd449c"
    }
    "yolo11-pose" = {
      "yolo11n-pose" = "869e83fcdffdc7371fa4e34cd8e51c838cc729571d1635e5141e3075e9319dc0"
      "yolo11s-pose" = "1060bda4a27012060eca246f9b2adeea22eabb045a1e58f8d229be29b7ebc2ba"
      "yolo11m-pose" = "29b17eaf3a3117cbea906090dbedf9159f7c6a49db58ec8b99ed2dfde1cf6eb2"
      "yolo11l-pose" = "61921abe1f2ed930bf28328a16b3162278cdb239a1e8280b6ac827119f13cee0"
      "yolo11x-pose" = "013c43543b0751b8918486ba96e01ee44a59040683a07f96cc22bcc2cb7785f8"
    }
    "yolo11-obb" = {
      "yolo11n-obb" = "b62898ebf38940ca4df323863e45ee9d84a1a46d5d11ebdde529fb33aa9f3a32"
      "yolo11s-obb" = "43fa63102922e0701501241b307420d24fc55e080816888b18bf8c6f96b1a45a"
      "yolo11m-obb" = "41832a4349c08190335bbc11a8e64726750702eb49cf09abb262bc394a13498c"
      "yolo11l-obb" = "92dcf9face59a821cd4ee93828f4c19b51f6dee9b842b23c1dacab7aa89039fc"
      "yolo11x-obb" = "1461342db1ce0f35c755278303febd1174604ccc375110076fa0ac155231b6a0"
    }
    "yolo26-detection" = {
      "yolo26n" = "9b09cc8bf347f0fc8a5f7657480587f25db09b34bf33b0652110fb03a8ad4fef"
      "yolo26s" = "646f8bc3fe0a656803d95c294f7852321748cb29d13466a1af8862e2db384a1b"
      "yolo26m" = "401cea9ab23ad19246ff7744859816bc599f350e93c9dd30367b6f0a0745d0b7"
      "yolo26l" = "9fe3c544f2b19bebad7ea41e76d7ad3d88b7c2f10d11d24430c5311f6b32db26"
      "yolo26x" = "9fdd44a31c504547ffb81d2c6d9e6dac3493c8eaa8b0398d3f43bae6c7003e92"
    }
    "yolo26-segmentation" = {
      "yolo26n-seg" = "361fbfabab285c3237700b6bb91d7ecfa602cd945fffda8dbe1242829b71e73f"
      "yolo26s-seg" = "3da1d83e31caec96f9300eb4064f4f62882c133c7c264d63dfe61a7c197837a4"
      "yolo26m-seg" = "16b636f04e8fb6a325b3370f22dc5e5535ff473e384f4d041fd28d788f6ee9f5"
      "yolo26l-seg" = "636024306410afa1732692322fba57d22ea2b1c2f07613fcee131a93d7dd380c"
      "yolo26x-seg" = "92b3de0065766a17180d6219858717dc9d03cdce8a3ca9576c97fd75aabb64f3"
    }
    "yolo26-classification" = {
      "yolo26n-cls" = "0dd6f8dbc448870ac98a3cbb7156f923f7ce21fed3755d4019169ffffd279e81"
      "yolo26s-cls" = "816790029d5df3fef358f03c8144b96339d8824ee25577aeda8be0963e5c5f09"
      "yolo26m-cls" = "9f6546f33a70d910e2cd6dcca5265c4617b5670b19a1f287c39e99258bade01a"
      "yolo26l-cls" = "7a3aebb7de6f5d79f0153da627a5f68bd3d7df30e648c0fdb7f9217986ee129e"
      "yolo26x-cls" = "ee88a0c71e9596cdfdbb71892725929cb4489b874d24fb581d20bffe79724386"
    }
    "yolo26-pose" = {
      "yolo26n-pose" = "eb3bb8268828aeaf515cec23a4bfafd793944a86fe9af94ba7823609c14522a9"
      "yolo26s-pose" = "a083adb42303728ae14c4bd6bd56d80da46f82fb2564dbd6f31dcc92ea321646"
      "yolo26m-pose" = "2fbf16367022256a226035695c5c389384c6706e8bb8ab8fcd0e7976f05443c4"
      "yolo26l-pose" = "ad33da8a29ea5772318c4c980844e47b56792d2b63815ad4e8e09c078c7d1abf"
      "yolo26x-pose" = "08ed9e01d22a6f248b04f2f9992016aca9a32250b9ab57057d886a09d026700d"
    }
    "yolo26-obb" = {
      "yolo26n-obb" = "6f51c78197aacda4a33be77294065a9001675fb893f56227a179731b53dbd2b0"
      "yolo26s-obb" = "38dbd72ef6804f9bbbea7ad20f486e6ca6e093c8cd9bc857207a846565bd6e0b"
      "yolo26m-obb" = "23e0630f66857cf4b87535f6e705b065f1e8a33603640b8e61ace85b75312903"
      "yolo26l-obb" = "8674b0c24bf68aab5eb45009e0ac3808ce432237edf8cb5c50ae2191cb263a2b"
      "yolo26x-obb" = ""
    }
    "rtdetr-detection" = {
      "rtdetr-l" = "6de60b10d4bc566f00cda0f5b4d64afe4b66d48dc9695d2171effb7859d8e73f"
      "rtdetr-x" = ""
    }
  }
}

variable "PRETRAINED_BYTES" {
  # the size of each pinned file, as the release lists it, where known: what docs/images.md
  # adds up as the size each image gains (nothing reads it at build)
  default = {
    "yolov8n"      = 6549796
    "yolov8s"      = 22588772
    "yolov8m"      = 52136884
    "yolov8l"      = 87792836
    "yolov8x"      = 136890692
    "yolov8n-seg"  = 7071756
    "yolov8s-seg"  = 23914764
    "yolov8m-seg"  = 54921020
    "yolov8l-seg"  = 92417004
    "yolov8x-seg"  = 144101612
    "yolov8n-cls"  = 5563076
    "yolov8n-pose" = 6832633
    "yolov8s-pose" = 23513657
    "yolov8m-pose" = 53266977
    "yolov8n-obb"  = 6567590
    "yolo11n"      = 5613764
    "yolo11s"      = 19313732
    "yolo11m"      = 40684120
    "yolo11l"      = 51387343
    "yolo11x"      = 114636239
    "yolo11n-seg"  = 6182636
    "yolo11s-seg"  = 20669228
    "yolo11m-seg"  = 45400152
    "yolo11l-seg"  = 56096965
    "yolo11x-seg"  = 125090821
    "yolo11n-cls"  = 5790624
    "yolo11s-cls"  = 13630112
    "yolo11m-cls"  = 23487128
    "yolo11l-cls"  = 28553700
    "yolo11x-cls"  = 59624868
    "yolo11n-pose" = 6255593
    "yolo11m-pose" = 42459307
    "yolo11l-pose" = 53164402
    "yolo11x-pose" = 118481010
    "yolo11n-obb"  = 5795654
    "yolo11s-obb"  = 19934534
    "yolo11m-obb"  = 42415346
    "yolo11l-obb"  = 53120908
    "yolo11x-obb"  = 118438668
    "yolo26n"      = 5544453
    "yolo26s"      = 20422725
    "yolo26m"      = 44255705
    "yolo26l"      = 53211173
    "yolo26x"      = 118667365
    "yolo26n-seg"  = 6719965
    "yolo26s-seg"  = 23467933
    "yolo26m-seg"  = 54750385
    "yolo26l-seg"  = 63700037
    "yolo26x-seg"  = 142129861
    "yolo26n-cls"  = 5786434
    "yolo26s-cls"  = 13622082
    "yolo26m-cls"  = 23477398
    "yolo26l-cls"  = 28535928
    "yolo26x-cls"  = 59610168
    "yolo26n-pose" = 7878574
    "yolo26s-pose" = 24151790
    "yolo26l-pose" = 57995961
    "yolo26x-pose" = 126242553
    "yolo26n-obb"  = 5907357
    "rtdetr-l"     = 66511432
  }
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
  targets = concat(["base"], split(",", MODEL_IMAGES), split(",", PROCESSING_IMAGES))
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

# An image on top of the base target of the same bake run (no push needed).
target "_child" {
  inherits = ["_common"]
  contexts = { pictrain-base = "target:base" }
  args     = { BASE_IMAGE = "pictrain-base" }
  labels   = { "org.opencontainers.image.base.name" = "${REGISTRY}/base:${TAG}-${torch_extra(CUDA)}" }
}

# A model image: images/<name>/, with its pretrained weights fetched at build.
target "_model" {
  inherits = ["_child"]
  args     = { PRETRAINED_URL = PRETRAINED_URL }
  secret   = CA_CERT != "" ? ["id=ca,src=${CA_CERT}"] : []
}

# One target per folder in MODEL_IMAGES, all alike: an image is its folder's model.toml.
target "model" {
  name     = img
  matrix   = { img = split(",", MODEL_IMAGES) }
  inherits = ["_model"]
  context  = "images/${img}"
  contexts = { pretrained = PRETRAINED_DIR != "" ? PRETRAINED_DIR : "images/${img}" }
  args     = {
    PRETRAINED = join(" ", [for model, sha256 in PRETRAINED[img] : "${model}=${sha256}" if sha256 != ""])
  }
  tags     = image(img)
  labels   = { "org.opencontainers.image.title" = "pictrain-${img}" }
}

# One target per folder in PROCESSING_IMAGES: the base and the command Picsellia runs.
target "processing" {
  name     = img
  matrix   = { img = split(",", PROCESSING_IMAGES) }
  inherits = ["_child"]
  context  = "images/${img}"
  tags     = image(img)
  labels   = { "org.opencontainers.image.title" = "pictrain-${img}" }
}
