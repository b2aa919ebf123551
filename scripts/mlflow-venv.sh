#!/usr/bin/env bash
# Ensures a venv holding what the instance installs (templates/mlflow-lock.txt:
# MLflow with the auth extra, boto3, psycopg2-binary and every dependency, by
# sha256) and prints its path. The cloudinit smoke test runs the rendered server from it;
# the boot test's client uses it. A Python the lock does not cover gets the
# same MLflow version by version pins, as the instance would.
#   MLSTACK_MLFLOW_VENV  where (default: REPO/.cache/mlflow-venv)
#   MLSTACK_PYTHON       interpreter for the venv (default: python3)
#   MLSTACK_MLFLOW_VERSION  another MLflow version: by its test lock
#                        scripts/testdata/mlflow-VERSION-lock.txt where there
#                        is one (the tests' older MLflow, whose data the
#                        locked one upgrades), else by version pins
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/venv-install.sh
VENV=${MLSTACK_MLFLOW_VENV:-$PWD/.cache/mlflow-venv}
PYTHON=${MLSTACK_PYTHON:-python3}
LOCK=$PWD/templates/mlflow-lock.txt

# The single source of the pinned version is the Go constant.
locked=$(sed -n 's/^const DefaultMLflowVersion = "\([0-9.]*\)".*/\1/p' cloudinit/cloudinit.go)
[[ -n $locked ]] || { echo "mlflow-venv: cannot read DefaultMLflowVersion" >&2; exit 1; }
version=${MLSTACK_MLFLOW_VERSION:-$locked}

# What the venv was made from: the lock's hash, or the pins.
target=$("$PYTHON" -c 'import platform, sys; print("%d.%d-%s" % (sys.version_info[:2] + (platform.machine(),)))')
if [[ $version == "$locked" ]] && grep -q "^#@ targets .*\b$target\b" "$LOCK"; then
	want="lock $(sha256sum "$LOCK" | cut -d' ' -f1)"
	reqs=(--require-hashes --no-deps --only-binary :all: -r "$LOCK")
elif [[ -f scripts/testdata/mlflow-$version-lock.txt ]]; then
	test_lock=$PWD/scripts/testdata/mlflow-$version-lock.txt
	want="test lock $(sha256sum "$test_lock" | cut -d' ' -f1)"
	reqs=(--require-hashes --no-deps -r "$test_lock")
else
	want="pins mlflow[auth]==$version boto3 psycopg2-binary"
	reqs=("mlflow[auth]==$version" boto3 psycopg2-binary)
fi
stamp=$VENV/.mlstack-installed
# One install at a time (test.sh and boot-test.sh both call this).
mkdir -p "$(dirname "$VENV")"
exec 9>"$VENV.lock"
flock 9
if [[ ! -x $VENV/bin/mlflow || $(cat "$stamp" 2>/dev/null) != "$want" ]]; then
	echo "mlflow-venv: installing MLflow $version into $VENV (${want%% *}, Python $target)" >&2
	rm -rf "$VENV"
	"$PYTHON" -m venv "$VENV" >&2
	venv_install "$VENV" "${reqs[@]}"
	echo "$want" >"$stamp"
fi
echo "$VENV"
