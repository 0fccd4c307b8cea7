#!/usr/bin/env bash
# Make sure a Docker daemon answers; start the unpacked one (.tools/docker, see docker-tools.sh)
# when none does. Needs root to start one. Prints the docker CLI to use on stdout.
#
#   DOCKER="$(scripts/docker-daemon.sh)" && $DOCKER info
#
# The daemon keeps running after this script (log: .tools/docker/dockerd.log, pid in
# .tools/docker/dockerd.pid); `scripts/docker-daemon.sh stop` stops the one it started.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="${DOCKER_TOOLS_DIR:-$ROOT/.tools/docker}"
PIDFILE="$TOOLS/dockerd.pid"
LOG="$TOOLS/dockerd.log"

if [[ "${1:-}" == stop ]]; then
    if [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
        kill "$(cat "$PIDFILE")"
        echo "docker-daemon: stopped dockerd $(cat "$PIDFILE")" >&2
    fi
    rm -f "$PIDFILE"
    exit 0
fi

# A working CLI + buildx + daemon already? (Docker Desktop, a CI runner, a daemon started before.)
for cli in docker "$TOOLS/bin/docker"; do
    if command -v "$cli" >/dev/null && "$cli" buildx version >/dev/null 2>&1 \
        && "$cli" version --format "{{.Server.Version}}" >/dev/null 2>&1; then
        echo "$cli"
        exit 0
    fi
done

"$ROOT/scripts/docker-tools.sh" >&2
# A daemon may answer that only lacked a CLI with buildx (one started by another checkout's
# tools, or a system dockerd next to an old docker CLI): use it.
if "$TOOLS/bin/docker" version --format "{{.Server.Version}}" >/dev/null 2>&1; then
    echo "$TOOLS/bin/docker"
    exit 0
fi
if [[ "$(id -u)" != 0 ]]; then
    echo "docker-daemon: no Docker daemon reachable and not root: cannot start one" >&2
    exit 1
fi
if ! command -v iptables >/dev/null; then
    # dockerd's bridge network (NAT for build steps that download) needs iptables.
    echo "docker-daemon: installing iptables (apt)" >&2
    apt-get install -y -q iptables >&2 || { apt-get update -q >&2 && apt-get install -y -q iptables >&2; }
fi

if [[ -n "${DOCKER_HOST:-}" && "$DOCKER_HOST" != unix:///var/run/docker.sock ]]; then
    echo "docker-daemon: DOCKER_HOST=$DOCKER_HOST does not answer; not starting one elsewhere" >&2
    exit 1
fi
if [[ -f /var/run/docker.pid ]] && kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
    echo "docker-daemon: a dockerd (pid $(cat /var/run/docker.pid)) runs but does not answer" >&2
    exit 1
fi
echo "docker-daemon: starting $TOOLS/bin/dockerd (log $LOG)" >&2
PATH="$TOOLS/bin:$PATH" nohup dockerd >"$LOG" 2>&1 </dev/null &
pid=$!
for _ in $(seq 1 60); do
    if "$TOOLS/bin/docker" version --format "{{.Server.Version}}" >/dev/null 2>&1; then
        echo "$pid" >"$PIDFILE"
        echo "$TOOLS/bin/docker"
        exit 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 1
done
echo "docker-daemon: dockerd did not come up; last lines of $LOG:" >&2
tail -20 "$LOG" >&2
exit 1
