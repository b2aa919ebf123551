#!/bin/sh
# mlstack: first-boot setup, run once by cloud-init's runcmd, i.e. after the
# packages, the users and the deferred files are in place. Installs the pinned
# MLflow into a venv (Ubuntu's Python is externally managed, PEP 668) and
# starts the service.
#
# Usage: mlstack-setup MLFLOW_VERSION
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
venv=/opt/mlflow

# The service may write only here (sqlite databases); the venv stays root-owned.
install -d -o mlflow -g mlflow -m 0750 /var/lib/mlflow

log "creating venv $venv"
python3 -m venv "$venv"
log "installing mlflow[auth]==$version and boto3"
"$venv/bin/pip" install --no-cache-dir --disable-pip-version-check \
    --retries 10 --timeout 60 "mlflow[auth]==$version" boto3
"$venv/bin/mlflow" --version

systemctl daemon-reload
systemctl enable --now mlflow.service
log "mlflow.service enabled and started"
