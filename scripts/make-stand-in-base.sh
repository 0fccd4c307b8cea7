#!/usr/bin/env bash
# Build a local stand-in for the nvidia/cuda base image, for machines that reach no registry.
#
# The real base (nvidia/cuda:<x.y>-base-ubuntu24.04) is an OS + the CUDA runtime's env vars; torch
# brings its own CUDA libraries from PyPI, so for building and testing the images any Debian or
# Ubuntu root file system with apt will do. This one is `debootstrap --variant=minbase` of Debian
# (apt reaches Debian's archive here) imported with `docker import`, with the env of nvidia/cuda.
#
#   scripts/make-stand-in-base.sh            # -> pictrain-stand-in/cuda:bookworm (prints the tag)
#   STAND_IN_SUITE=trixie scripts/make-stand-in-base.sh
#
# Idempotent: does nothing when the image exists. Needs root (debootstrap) and a daemon.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SUITE="${STAND_IN_SUITE:-bookworm}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
TAG="${STAND_IN_TAG:-pictrain-stand-in/cuda:$SUITE}"
DOCKER="${DOCKER:-docker}"
CACHE="$ROOT/.tools/stand-in"

if "$DOCKER" image inspect "$TAG" >/dev/null 2>&1; then
    echo "$TAG"
    exit 0
fi
tarball="$CACHE/$SUITE-minbase.tar"
if [[ ! -s "$tarball" ]]; then
    [[ "$(id -u)" == 0 ]] || { echo "make-stand-in-base: debootstrap needs root" >&2; exit 1; }
    command -v debootstrap >/dev/null || apt-get install -y -q debootstrap >&2 \
        || { apt-get update -q >&2 && apt-get install -y -q debootstrap >&2; }
    mkdir -p "$CACHE"
    rootfs="$(mktemp -d "$CACHE/rootfs.XXXXXX")"
    trap 'rm -rf "$rootfs"' EXIT
    echo "make-stand-in-base: debootstrap --variant=minbase $SUITE (a minute or two)" >&2
    debootstrap --variant=minbase "$SUITE" "$rootfs" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
        || { tail -20 "$CACHE/debootstrap.log" >&2; exit 1; }
    # Like the official Debian/Ubuntu images: no apt lists, no caches.
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
    tar --numeric-owner -C "$rootfs" -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
fi
# The env nvidia/cuda:*-base sets; the NVIDIA container toolkit reads the NVIDIA_* ones.
"$DOCKER" import \
    --change 'ENV PATH=/usr/local/nvidia/bin:/usr/local/cuda/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LD_LIBRARY_PATH=/usr/local/nvidia/lib:/usr/local/nvidia/lib64' \
    --change 'ENV NVIDIA_VISIBLE_DEVICES=all' \
    --change 'ENV NVIDIA_DRIVER_CAPABILITIES=compute,utility' \
    --change 'CMD ["bash"]' \
    --message "stand-in for nvidia/cuda base: debootstrap minbase $SUITE" \
    "$tarball" "$TAG" >&2
echo "$TAG"
