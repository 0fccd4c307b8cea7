#!/usr/bin/env bash
# The GPU check: pictrain's training on a GPU against raw `yolo train`, then DDP on every GPU,
# then the GPU exports (TensorRT fp16 and int8, TorchScript fp16) scored and timed.
# Needs the repo and the lock file (the venv is made from it: `make setup`); under 8 minutes on
# one recent GPU once the venv exists. Figures go to docs/benchmarks.md (a section `make bench`
# keeps) and runs/gpu-check/results.json. What it runs: scripts/bench/gpu.py.
#
#   scripts/gpu-check.sh                      # yolov8n and yolo11n, 1024 images at 640 px
#   scripts/gpu-check.sh --epochs 3 --images 512   # any flag of python -m scripts.bench.gpu
set -euo pipefail
cd "$(dirname "$0")/.."

if ! nvidia-smi -L >/dev/null 2>&1; then
	echo "gpu-check: nvidia-smi sees no GPU; run this on a GPU machine" >&2
	exit 2
fi
make --no-print-directory setup >&2
# TensorRT for the engine exports (docs/exports.md): not in the lock, its libraries come from
# NVIDIA's own index; the build that matches torch's CUDA major.
if ! .venv/bin/python -c "import tensorrt" 2>/dev/null; then
	cuda=$(.venv/bin/python -c "import torch; print(torch.version.cuda.split('.')[0])")
	uv=$(command -v uv || echo .tools/bin/uv)
	"$uv" pip install --python .venv/bin/python "tensorrt-cu${cuda}" >&2
fi
exec .venv/bin/python -m scripts.bench.gpu "$@"
