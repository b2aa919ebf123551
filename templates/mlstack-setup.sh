#!/bin/sh
# mlstack: first-boot setup, run once by cloud-init's runcmd, i.e. after the
# packages, the users and the deferred files are in place. Installs the pinned
# MLflow into a venv (Ubuntu's Python is externally managed, PEP 668) and
# starts the service.
#
# The install uses uv (from PyPI, pinned), which took about half pip's time
# to a healthy server in mlstack's cold-cache benchmark (docs/BENCHMARKS.md).
# pip stays as the fallback: if uv cannot be installed or fails, the same
# requirements go through pip, which costs time but not the server.
#
# Usage: mlstack-setup MLFLOW_VERSION
# Test knob, unset in production: MLSTACK_SETUP_VENV (default /opt/mlflow,
# where mlflow.service runs it from).
set -eu

log() {
    printf 'mlstack-setup: %s\n' "$*" >&2
}

version=${1:?usage: mlstack-setup MLFLOW_VERSION}
case $version in
*[!0-9.]*)
    log "bad MLflow version '$version'"
    exit 2
    ;;
esac
venv=${MLSTACK_SETUP_VENV:-/opt/mlflow}
uv_version=0.13.9

# The service may write only here (sqlite databases); the venv stays root-owned.
install -d -o mlflow -g mlflow -m 0750 /var/lib/mlflow

log "creating venv $venv"
python3 -m venv "$venv"
pip_install() {
    "$venv/bin/pip" install --no-cache-dir --disable-pip-version-check \
        --retries 10 --timeout 60 "$@"
}
log "installing mlflow[auth]==$version and boto3 with uv $uv_version"
if pip_install "uv==$uv_version" &&
    UV_HTTP_TIMEOUT=60 "$venv/bin/uv" pip install --python "$venv/bin/python" \
        --no-cache --link-mode copy --compile-bytecode "mlflow[auth]==$version" boto3; then
    log "installed with uv"
else
    log "uv failed; installing with pip instead"
    pip_install "mlflow[auth]==$version" boto3
fi
"$venv/bin/mlflow" --version

systemctl daemon-reload
systemctl enable --now mlflow.service
log "mlflow.service enabled and started"
