#!/bin/sh
# mlstack: ExecStartPre of mlflow.service, so it runs at every start. It asks
# IMDSv2 for the instance's public DNS name and IPv4 address and writes the
# environment file with MLFLOW_SERVER_ALLOWED_HOSTS (`mlflow server
# --allowed-hosts`, MLflow 3.5+), which rejects foreign Host headers (DNS
# rebinding), and MLFLOW_SERVER_CORS_ALLOWED_ORIGINS, without which MLflow
# refuses the UI's own state-changing requests (a browser sends Origin on
# every POST, and only localhost origins are allowed by default), and the
# addresses themselves for mlstack_keys.py (the TLS certificate's names).
# Public addresses change when the instance is stopped and started, so they
# cannot be baked into the user-data.
#
# Usage: allowed-hosts.sh OUTPUT_FILE
# Test knobs, unset in production: MLSTACK_IMDS_ENDPOINT, MLSTACK_IMDS_ATTEMPTS,
# MLSTACK_IMDS_RETRY_DELAY (seconds).
set -eu

out=${1:?usage: allowed-hosts.sh OUTPUT_FILE}
imds=${MLSTACK_IMDS_ENDPOINT:-http://169.254.169.254}
attempts=${MLSTACK_IMDS_ATTEMPTS:-10}
delay=${MLSTACK_IMDS_RETRY_DELAY:-3}
port=5000

log() {
    printf 'allowed-hosts: %s\n' "$*" >&2
}

# meta ITEM prints one metadata item; it fails on any HTTP error, and IMDS
# answers 404 for an item the instance does not have.
meta() {
    curl -fsS --connect-timeout 2 --max-time 5 \
        -H "X-aws-ec2-metadata-token: $token" "$imds/latest/meta-data/$1"
}

# Host names and IPv4 addresses only: letters, digits, dots and hyphens.
# Anything else, above all a wildcard, must never reach the allow list.
valid() {
    case $1 in
    '' | *[!A-Za-z0-9.-]* | [.-]*) return 1 ;;
    esac
}

token=
host=
ip=
i=1
while :; do
    host=
    ip=
    if token=$(curl -fsS --connect-timeout 2 --max-time 5 -X PUT \
        -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' "$imds/latest/api/token") &&
        [ -n "$token" ]; then
        host=$(meta public-hostname) || host=
        ip=$(meta public-ipv4) || ip=
        if [ -n "$host" ] && [ -n "$ip" ]; then
            break
        fi
        log "attempt $i/$attempts: IMDS gave public-hostname '$host', public-ipv4 '$ip'"
    else
        log "attempt $i/$attempts: no IMDSv2 token from $imds"
    fi
    if [ "$i" -ge "$attempts" ]; then
        break
    fi
    i=$((i + 1))
    sleep "$delay"
done

if [ -z "$host" ] && [ -z "$ip" ]; then
    log "giving up: could not learn the public DNS name or IPv4 address from IMDS at $imds;" \
        "not starting MLflow without an allowed-hosts list"
    exit 1
fi

list=
origins=
add() {
    if ! valid "$1"; then
        log "refusing suspicious value '$1' from IMDS"
        exit 1
    fi
    list="${list:+$list,}$1,$1:$port"
    origins="${origins:+$origins,}https://$1:$port"
}
if [ -n "$host" ]; then add "$host"; else log "warning: no public DNS name; allowing the IP only"; fi
if [ -n "$ip" ]; then add "$ip"; else log "warning: no public IPv4; allowing the DNS name only"; fi
# Setting the variable replaces MLflow's default list, which is what allows
# localhost: keep it so checks and SSH tunnels on the instance still work.
add localhost
add 127.0.0.1

# Write-then-rename so the service never reads a half-written file.
tmp="$out.tmp.$$"
{
    printf 'MLFLOW_SERVER_ALLOWED_HOSTS=%s\n' "$list"
    printf 'MLFLOW_SERVER_CORS_ALLOWED_ORIGINS=%s\n' "$origins"
    printf 'MLSTACK_PUBLIC_DNS=%s\n' "$host"
    printf 'MLSTACK_PUBLIC_IP=%s\n' "$ip"
} >"$tmp"
mv -f "$tmp" "$out"
log "MLFLOW_SERVER_ALLOWED_HOSTS=$list"
log "MLFLOW_SERVER_CORS_ALLOWED_ORIGINS=$origins"
