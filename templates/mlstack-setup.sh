#!/bin/sh
# mlstack: first-boot setup, run once by cloud-init's runcmd (after the users
# and deferred files). Installs MLflow into a venv and starts the service.
#
# With the locked MLflow version, on a Python and architecture the lock
# (/usr/local/share/mlstack/mlflow-lock.txt, from scripts/lock.sh) covers,
# every package is pinned by version and sha256 and comes from a wheel, so no
# package code runs at install, as root or otherwise. Anything else is
# installed by version pins, unchecked, and says so.
#
# No apt: the venv is made without pip (ensurepip needs python3-venv), and
# uv is its PyPI wheel, fetched with curl and checked by sha256. If uv fails,
# pip (its wheel, checked too) installs the same; both are tried three times.
# apt runs only if curl is missing, with a lock timeout and retries.
#
# The lock comes from the stack bucket (mlstack_s3get.py, signed with the
# role) and is used only when its sha256 is the one runcmd passes.
#
# Usage: mlstack-setup MLFLOW_VERSION REGION LOCK_URL LOCK_SHA256
# Test knobs, unset in production: MLSTACK_SETUP_VENV (default /opt/mlflow),
# MLSTACK_SETUP_LOCK (a lock already here: no fetch), MLSTACK_SETUP_UNIT_DIR (default /etc/systemd/system),
# MLSTACK_SETUP_DELAY (seconds between retries, default 10).
set -eu

log() {
    printf 'mlstack-setup: %s\n' "$*" >&2
}

version=${1:?usage: mlstack-setup MLFLOW_VERSION REGION LOCK_URL LOCK_SHA256}
case $version in
*[!0-9.]*)
    log "bad MLflow version '$version'"
    exit 2
    ;;
esac
venv=${MLSTACK_SETUP_VENV:-/opt/mlflow}
lock=${MLSTACK_SETUP_LOCK:-/usr/local/share/mlstack/mlflow-lock.txt}
unit_dir=${MLSTACK_SETUP_UNIT_DIR:-/etc/systemd/system}
delay=${MLSTACK_SETUP_DELAY:-10}
if [ -z "${MLSTACK_SETUP_LOCK:-}" ]; then
    mkdir -p "${lock%/*}"
    python3 /usr/local/libexec/mlstack/mlstack_s3get.py "${3:?no LOCK_URL}" "${2:?no REGION}" "${4:?no LOCK_SHA256}" "$lock" ||
        { log "could not fetch the lock from the stack bucket"; exit 1; }
fi
[ -r "$lock" ] || { log "no lock at $lock"; exit 1; }

# lock_data KEY...: the words after "#@ KEY..." in the lock.
lock_data() {
    awk -v key="$*" 'index($0, "#@ " key " ") == 1 { print substr($0, length(key) + 5); exit }' "$lock"
}

# apt_install PACKAGE...: waits for a busy dpkg lock, retries a failing mirror.
apt_install() {
    n=1
    while :; do
        if apt-get -q -o DPkg::Lock::Timeout=300 -o Acquire::Retries=5 update &&
            DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=300 \
                -o Acquire::Retries=5 install --no-install-recommends "$@"; then
            return 0
        fi
        [ "$n" -lt 5 ] || return 1
        log "apt-get failed (attempt $n/5); retrying in ${delay}s"
        sleep "$delay"
        n=$((n + 1))
    done
}

# fetch NAME: the lock's installer wheel NAME for this machine, checked and
# unpacked into $work/NAME.
fetch() {
    [ ! -d "$work/$1" ] || return 0
    set -- "$1" "$(lock_data "$1" "$arch")"
    [ -n "$2" ] || set -- "$1" "$(lock_data "$1" any)"
    [ -n "$2" ] || { log "the lock has no $1 for $arch"; return 1; }
    rm -rf "$work/$1.whl" "$work/$1.tmp"
    curl -fsSL --retry 5 --retry-delay 2 --retry-all-errors --connect-timeout 10 --max-time 300 \
        -o "$work/$1.whl" "${2#* }" &&
        echo "${2%% *}  $work/$1.whl" | sha256sum -c --quiet - &&
        python3 -m zipfile -e "$work/$1.whl" "$work/$1.tmp" &&
        mv "$work/$1.tmp" "$work/$1"
}

install_with_uv() {
    fetch uv || return 1
    uv=$(echo "$work"/uv/uv-*.data/scripts/uv)
    chmod 0755 "$uv"
    UV_HTTP_TIMEOUT=60 "$uv" pip install --python "$venv/bin/python" \
        --no-cache --link-mode copy --no-build "$@" &&
        if [ "$mode" = locked ]; then "$uv" pip check --python "$venv/bin/python"; fi
}

install_with_pip() {
    fetch pip || return 1
    "$venv/bin/python" "$work/pip/pip" install --no-cache-dir --disable-pip-version-check \
        --retries 10 --timeout 60 --only-binary :all: "$@"
}

# The service may write only here (sqlite databases); the venv stays root-owned.
install -d -o mlflow -g mlflow -m 0750 /var/lib/mlflow

if ! command -v curl >/dev/null; then
    log "no curl: installing it with apt"
    apt_install curl ca-certificates || { log "giving up: apt could not install curl"; exit 1; }
fi

arch=$(uname -m)
python=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
locked=$(lock_data mlflow)
mode=pins
if [ "$version" != "$locked" ]; then
    log "MLflow $version is not the locked $locked: installing it by version pins, without hash checks"
elif ! lock_data targets | tr ' ' '\n' | grep -qx "$python-$arch"; then
    log "the lock has no wheels for Python $python on $arch: installing MLflow $version by version pins, without hash checks"
else
    mode=locked
fi
if [ "$mode" = locked ]; then
    set -- --require-hashes --no-deps -r "$lock"
    what="mlflow[auth]==$version, boto3, psycopg2-binary and their dependencies from the lock (sha256-checked)"
else
    # cryptography: mlstack_keys.py makes the TLS key and certificate;
    # psycopg2-binary: PostgreSQL's driver (--db postgres), as in the lock.
    set -- "mlflow[auth]==$version" boto3 cryptography psycopg2-binary
    what="mlflow[auth]==$version, boto3, cryptography and psycopg2-binary (version pins)"
fi

log "creating venv $venv (Python $python, $arch)"
python3 -m venv --without-pip "$venv"
work=$(mktemp -d "$(dirname "$venv")/.mlstack-setup.XXXXXX")
trap 'rm -rf "$work"' EXIT

n=1
while :; do
    log "installing $what with uv"
    if install_with_uv "$@"; then
        log "installed with uv"
        break
    fi
    log "uv failed; installing with pip instead"
    if install_with_pip "$@"; then
        log "installed with pip"
        break
    fi
    [ "$n" -lt 3 ] || { log "giving up: neither uv nor pip could install MLflow"; exit 1; }
    log "pip failed too (attempt $n/3); trying again in ${delay}s"
    sleep "$delay"
    n=$((n + 1))
done
# Read from the installed metadata; importing mlflow would take seconds.
log "installed MLflow $("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("mlflow"))')"

if [ "$version" != "$locked" ]; then
    # mlflow.service starts uvicorn the way `mlflow server` $locked does.
    # The store comes from the environment, never the command line, which any
    # local user can read: with --db postgres it holds the database password
    # (/run/mlflow/store.env, an EnvironmentFile, overrides this one).
    log "MLflow $version: mlflow.service starts it with \`mlflow server\`"
    mkdir -p "$unit_dir/mlflow.service.d"
    cat >"$unit_dir/mlflow.service.d/mlflow-server-cli.conf" <<'EOF'
# mlstack-setup: not the locked MLflow version; start it the public way.
[Service]
Environment=MLFLOW_BACKEND_STORE_URI=sqlite:////var/lib/mlflow/mlflow.db
ExecStart=
ExecStart=/opt/mlflow/bin/mlflow server --app-name basic-auth --host 0.0.0.0 --port 5000 --workers 1 --default-artifact-root ${_MLFLOW_SERVER_ARTIFACT_ROOT} --artifacts-destination ${_MLFLOW_SERVER_ARTIFACT_DESTINATION} --uvicorn-opts "--ssl-keyfile /var/lib/mlflow/tls/server.key --ssl-certfile /var/lib/mlflow/tls/server.crt"
EOF
fi

systemctl daemon-reload
systemctl enable --now mlflow.service mlstack-backup.timer
log "mlflow.service enabled and started; backups every 5 minutes (mlstack-backup.timer)"
# Bytecode is compiled once the server answers (or after ten minutes),
# outside cloud-init, at the lowest priority: the first start compiles in
# memory only what it imports (5 s more; compiling all first took 14 s),
# later starts read the .pyc files. The venv stays root-owned. The probe
# sends nothing and the certificate names the public address, not
# 127.0.0.1: -k is safe here. The finished
# unit stays loaded: `systemctl status mlstack-bytecode` tells how it went.
# shellcheck disable=SC2016 # expanded by the inner sh
systemd-run --unit=mlstack-bytecode --description="mlstack: compile MLflow's bytecode" \
    --nice=19 -p IOSchedulingClass=idle -p RemainAfterExit=yes --no-block --quiet sh -c 'n=0
while [ "$n" -lt 300 ] && ! curl -fsSk -o /dev/null --max-time 2 https://127.0.0.1:5000/health; do
    sleep 2; n=$((n + 1))
done
exec "$1/bin/python" -m compileall -q -j 0 "$1/lib"' sh "$venv" ||
    log "could not start the bytecode compilation; the server compiles at each start"
