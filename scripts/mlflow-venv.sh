#!/usr/bin/env bash
# Ensures a venv holding the MLflow version the bootstrap pins (with the
# auth extra and boto3, exactly as the instance installs it) and prints its
# path. The cloudinit smoke test runs the rendered server command from it.
#   MLSTACK_MLFLOW_VENV  where (default: REPO/.cache/mlflow-venv)
#   MLSTACK_PYTHON       interpreter for the venv (default: python3)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV=${MLSTACK_MLFLOW_VENV:-$PWD/.cache/mlflow-venv}
PYTHON=${MLSTACK_PYTHON:-python3}

# The single source of the pinned version is the Go constant.
version=$(sed -n 's/^const DefaultMLflowVersion = "\([0-9.]*\)".*/\1/p' cloudinit/cloudinit.go)
[[ -n $version ]] || { echo "mlflow-venv: cannot read DefaultMLflowVersion" >&2; exit 1; }

if [[ ! -x $VENV/bin/mlflow ]] || [[ $("$VENV/bin/mlflow" --version 2>/dev/null) != *"$version"* ]]; then
	echo "mlflow-venv: installing mlflow[auth]==$version and boto3 into $VENV" >&2
	"$PYTHON" -m venv "$VENV" >&2
	"$VENV/bin/python" -m pip install --disable-pip-version-check --quiet \
		"mlflow[auth]==$version" boto3 >&2
fi
echo "$VENV"
