#!/usr/bin/env bash
# Unpack a Docker engine + buildx into .tools/docker/ for machines without a usable one.
#
# Debian bookworm's docker.io is too old for `docker buildx bake`, and no other registry than
# Debian's and PyPI may be reachable. So we fetch Debian trixie's docker.io, docker-buildx,
# containerd and runc .debs with apt (a private apt state dir: the host's apt lists and sources
# are not touched) and unpack them with `dpkg-deb -x` (nothing is installed over the host's libc).
#
# Afterwards:
#   .tools/docker/bin/docker          the CLI, with buildx as a plugin (a wrapper script)
#   .tools/docker/bin/dockerd         the daemon; needs root (scripts/docker-daemon.sh starts it)
#   .tools/docker/bin/docker-buildx   buildx, also usable stand-alone (`bake --print` needs no daemon)
#
# Idempotent: does nothing when the tools are already there. DOCKER_TOOLS_DIR moves the folder.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${DOCKER_TOOLS_DIR:-$ROOT/.tools/docker}"
SUITE="${DOCKER_TOOLS_SUITE:-trixie}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
PKGS=(docker.io docker-cli docker-buildx containerd runc tini)
# runc links libc dynamically: trixie's needs glibc >= 2.38, so an older host (bookworm) gets its
# own distro's runc (any runc >= 1.1 serves dockerd 26).

if [[ -x "$DEST/bin/docker" && -x "$DEST/bin/dockerd" && -x "$DEST/bin/docker-buildx" ]]; then
    exit 0
fi
command -v apt-get >/dev/null || { echo "docker-tools: needs apt-get (Debian/Ubuntu)" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/debs" "$work/etc/preferences.d"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
echo "deb [signed-by=$keyring] $MIRROR $SUITE main" >"$work/sources.list"
APT=(apt-get -q
    -o "Dir::Etc::sourcelist=$work/sources.list" -o "Dir::Etc::sourceparts=-"
    -o "Dir::Etc::preferencesparts=$work/etc/preferences.d"
    -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache"
    -o "Dir::State::status=/dev/null" -o "APT::Sandbox::User=root")

echo "docker-tools: fetching ${PKGS[*]} from Debian $SUITE" >&2
"${APT[@]}" update >/dev/null
(cd "$work/debs" && "${APT[@]}" download "${PKGS[@]}" >/dev/null)

rm -rf "$DEST.tmp"
mkdir -p "$DEST.tmp/root" "$DEST.tmp/bin"
for deb in "$work"/debs/*.deb; do
    dpkg-deb -x "$deb" "$DEST.tmp/root"
done
r="$DEST.tmp/root"
if ! "$r/usr/sbin/runc" --version >/dev/null 2>&1; then
    echo "docker-tools: $SUITE's runc does not run on this host; taking the host distro's" >&2
    mkdir -p "$work/host-debs"
    (cd "$work/host-debs" && apt-get -q -o APT::Sandbox::User=root download runc >/dev/null) \
        || { apt-get update -q >/dev/null && (cd "$work/host-debs" && apt-get -q -o APT::Sandbox::User=root download runc >/dev/null); }
    dpkg-deb -x "$work"/host-debs/runc_*.deb "$DEST.tmp/root"
    "$r/usr/sbin/runc" --version >/dev/null
fi
plugin="$r/usr/libexec/docker/cli-plugins/docker-buildx"
for f in "$r/usr/bin/docker" "$r/usr/sbin/dockerd" "$r/usr/sbin/docker-proxy" "$r/usr/bin/containerd" "$r/usr/bin/containerd-shim-runc-v2" \
    "$r/usr/sbin/runc" "$r/usr/bin/tini-static" "$plugin"; do
    [[ -x "$f" ]] || { echo "docker-tools: missing $f after unpacking" >&2; exit 1; }
done
# Symlinks relative to bin/ so the folder can move; dockerd finds containerd, runc, docker-proxy
# and docker-init (tini, for --init) on PATH.
for f in "$r"/usr/bin/* "$r"/usr/sbin/* "$plugin"; do
    ln -sfn "../root/${f#"$r/"}" "$DEST.tmp/bin/$(basename "$f")"
done
rm "$DEST.tmp/bin/docker"
ln -sfn ../root/usr/bin/tini-static "$DEST.tmp/bin/docker-init"
# The CLI finds plugins in $DOCKER_CONFIG/cli-plugins or in a config's cliPluginsExtraDirs: the
# wrapper adds our plugin folder without touching the user's ~/.docker.
cat >"$DEST.tmp/bin/docker" <<'EOF'
#!/bin/sh
here="$(cd "$(dirname "$0")/.." && pwd)"
exec "$here/root/usr/bin/docker" --config "$here/config" "$@"
EOF
chmod +x "$DEST.tmp/bin/docker"
mkdir -p "$DEST.tmp/config"
printf '{"cliPluginsExtraDirs": ["%s"]}\n' "$DEST/root/usr/libexec/docker/cli-plugins" \
    >"$DEST.tmp/config/config.json"
rm -rf "$DEST"
mv "$DEST.tmp" "$DEST"
"$DEST/bin/docker" --version >&2
"$DEST/bin/docker" buildx version >&2
