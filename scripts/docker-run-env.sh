#!/usr/bin/env bash
# Run a training image against a Picsellia experiment with the credentials of a .env file,
# under the variable names the platform sets in its containers.
#
#   scripts/docker-run-env.sh .env <experiment_id> -- docker run --rm --gpus all --ipc host IMAGE
#
# .env as users keep it (KEY=VALUE lines, '#' comments, optional quotes; it is read, never sourced):
#   API_TOKEN (or PICSELLIA_TOKEN)            -> api_token
#   ORGANIZATION_ID / ORGANIZATION_NAME       -> organization_id / organization_name
#   HOST (or PICSELLIA_HOST)                  -> host (default https://app.picsellia.com)
#   JOB_ID                                    -> job_id (optional)
# The values go to `docker run` through this process's environment (`-e name` with no value), so
# the token is not on any command line (`ps`), not logged and not written to disk.
set -euo pipefail

usage() { echo "usage: $0 ENV_FILE EXPERIMENT_ID -- docker run [flags] IMAGE [command]" >&2; exit 2; }
[[ $# -ge 4 && "$3" == "--" ]] || usage
env_file="$1" experiment_id="$2"
shift 3
[[ -r "$env_file" ]] || { echo "$0: cannot read $env_file" >&2; exit 2; }

declare -A dotenv=()
while IFS= read -r line || [[ -n "$line" ]]; do
    line="${line#"${line%%[![:space:]]*}"}"        # strip leading blanks
    [[ -z "$line" || "$line" == \#* ]] && continue
    line="${line#export }"
    key="${line%%=*}"
    [[ "$line" == *=* && "$key" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
    value="${line#*=}"
    value="${value%"${value##*[![:space:]]}"}"      # strip trailing blanks
    if [[ "$value" =~ ^\"(.*)\"$ || "$value" =~ ^\'(.*)\'$ ]]; then value="${BASH_REMATCH[1]}"; fi
    dotenv["$key"]="$value"
done <"$env_file"

first() {  # the first non-empty value among these keys, or nothing
    local k
    for k in "$@"; do
        if [[ -n "${dotenv[$k]:-}" ]]; then printf '%s' "${dotenv[$k]}"; return 0; fi
    done
    return 0
}

# (organization_name, host and job_id are read through ${!name} below)
api_token="$(first API_TOKEN PICSELLIA_TOKEN api_token)"
organization_id="$(first ORGANIZATION_ID PICSELLIA_ORGANIZATION_ID organization_id)"
organization_name="$(first ORGANIZATION_NAME PICSELLIA_ORGANIZATION_NAME organization_name)"
# shellcheck disable=SC2034
host="$(first HOST PICSELLIA_HOST host)"
# shellcheck disable=SC2034
job_id="$(first JOB_ID job_id)"
[[ -n "$api_token" ]] || { echo "$0: no API_TOKEN in $env_file" >&2; exit 2; }
[[ -n "$organization_id$organization_name" ]] \
    || { echo "$0: no ORGANIZATION_ID (or ORGANIZATION_NAME) in $env_file" >&2; exit 2; }

export api_token experiment_id
flags=(-e api_token -e experiment_id)
for name in organization_id organization_name host job_id; do
    if [[ -n "${!name}" ]]; then
        export "${name?}"
        flags+=(-e "$name")
    fi
done

# Insert the -e flags right after `docker run` / `<cli> run`.
cmd=()
inserted=
for arg in "$@"; do
    cmd+=("$arg")
    if [[ -z "$inserted" && "$arg" == run ]]; then
        cmd+=("${flags[@]}")
        inserted=1
    fi
done
[[ -n "$inserted" ]] || usage
echo "+ ${cmd[*]}   (credentials from $env_file, values not shown)" >&2
exec "${cmd[@]}"
