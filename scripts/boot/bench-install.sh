#!/bin/sh
# Runs inside a fresh copy of the boot test's rootfs (boot-test.sh
# bench-install): installs the lock the way mlstack-setup does, with uv or
# with pip (each from its PyPI wheel, checked against the lock's sha256, into
# a venv made without pip, no bytecode compiled up front), then starts the
# server as mlflow.service does (uvicorn, mlstack_mlflow.py, one process,
# basic auth, sqlite) and waits for /health. Cold: a fresh rootfs, no cache.
# Prints one line: MODE install=SECONDS healthy=SECONDS.
#
# Usage: bench-install.sh uv|pip DIR PORT   (DIR holds mlflow-lock.txt and
# mlstack_mlflow.py)
set -eu
mode=$1 dir=$2 port=$3
lock=$dir/mlflow-lock.txt
now() { date +%s.%N; }
venv=/opt/mlflow
arch=$(uname -m)

# wheel NAME: the installer wheel from the lock, checked, unpacked into $dir/NAME.
wheel() {
	line=$(awk -v n="$1" -v a="$arch" '$1 == "#@" && $2 == n && ($3 == a || $3 == "any") { print $4, $5; exit }' "$lock")
	curl -fsSL --retry 5 -o "$dir/$1.whl" "${line#* }"
	echo "${line%% *}  $dir/$1.whl" | sha256sum -c --quiet -
	python3 -m zipfile -e "$dir/$1.whl" "$dir/$1"
}

t0=$(now)
python3 -m venv --without-pip "$venv"
case $mode in
uv)
	wheel uv
	uv=$(echo "$dir"/uv/uv-*.data/scripts/uv)
	chmod 0755 "$uv"
	"$uv" pip install -q --python "$venv/bin/python" --no-cache --link-mode copy --no-build \
		--require-hashes --no-deps -r "$lock"
	;;
pip)
	wheel pip
	"$venv/bin/python" "$dir/pip/pip" install -q --no-cache-dir --disable-pip-version-check --no-compile \
		--only-binary :all: --require-hashes --no-deps -r "$lock"
	;;
*)
	echo "bad mode $mode" >&2
	exit 2
	;;
esac
t1=$(now)

d=$(mktemp -d)
cat >"$d/auth.ini" <<INI
[mlflow]
default_permission = READ
database_uri = sqlite:///$d/basic_auth.db
admin_username = admin
admin_password = bench-password-0123456789
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
INI
# As the unit: its Environment= lines, the service user cannot write .pyc.
PYTHONDONTWRITEBYTECODE=1 MLFLOW_AUTH_CONFIG_PATH=$d/auth.ini MLFLOW_FLASK_SERVER_SECRET_KEY=bench-secret-key-0123456789 \
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false _MLFLOW_SERVER_FILE_STORE=sqlite:///$d/mlflow.db \
	_MLFLOW_SERVER_REGISTRY_STORE=sqlite:///$d/mlflow.db _MLFLOW_SERVER_ARTIFACT_ROOT=$d/artifacts \
	_MLFLOW_SERVER_SERVE_ARTIFACTS=true _MLFLOW_SERVER_ARTIFACT_DESTINATION=./mlartifacts \
	_MLFLOW_IN_JOB_EXECUTOR=false _MLFLOW_SGI_NAME=uvicorn \
	"$venv/bin/python" -m uvicorn --host 127.0.0.1 --port "$port" --workers 1 \
	--app-dir "$dir" --factory mlstack_mlflow:create_app >"$d/server.log" 2>&1 &
server=$!
i=0
until curl -fsS -o /dev/null "http://127.0.0.1:$port/health" 2>/dev/null; do
	i=$((i + 1))
	if [ "$i" -gt 600 ] || ! kill -0 "$server" 2>/dev/null; then
		tail -n 20 "$d/server.log" >&2
		exit 1
	fi
	sleep 0.2
done
t2=$(now)
kill "$server"
wait "$server" || true
awk -v m="$mode" -v a="$t0" -v b="$t1" -v c="$t2" \
	'BEGIN { printf "%s install=%.1f healthy=%.1f\n", m, b - a, c - a }'
