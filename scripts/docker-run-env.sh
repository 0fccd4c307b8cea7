#!/usr/bin/env bash
# Run a training image against a Picsellia experiment with the credentials of a .env file,
# under the variable names the platform sets in its containers.
#
#   scripts/docker-run-env.sh .env <experiment_id> -- docker run --rm --gpus all --ipc host IMAGE
#
# .env as users keep it (KEY=VALUE lines, '#' comments, optional quotes; it is read, never
# sourced). Each platform variable is read from the .env keys scripts/platform-env.sh lists for it
# (generated from the package's one list, pictrain.envvars), e.g. API_TOKEN or PICSELLIA_TOKEN
# -> api_token, ORGANIZATION_ID -> organization_id, PICSELLIA_HOST -> host, JOB_ID -> job_id;
# EXPERIMENT_ID is the argument.
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

# shellcheck source=platform-env.sh
source "$(dirname "${BASH_SOURCE[0]}")/platform-env.sh"
dotenv[experiment_id]="$experiment_id"   # the argument wins over any .env key
flags=()
for entry in "${PLATFORM_ENV[@]}"; do
    read -r -a keys <<<"$entry"
    name="${keys[0]}"
    value=
    if [[ "$name" == experiment_id ]]; then keys=(experiment_id); fi
    for key in "${keys[@]}"; do
        if [[ -n "${dotenv[$key]:-}" ]]; then value="${dotenv[$key]}"; break; fi
    done
    if [[ -n "$value" ]]; then
        export "$name=$value"
        flags+=(-e "$name")
    elif [[ "$name" == api_token ]]; then
        echo "$0: no ${keys[*]} in $env_file" >&2; exit 2
    fi
done
[[ -n "${organization_id:-}${organization_name:-}" ]] \
    || { echo "$0: no ORGANIZATION_ID (or ORGANIZATION_NAME) in $env_file" >&2; exit 2; }

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
