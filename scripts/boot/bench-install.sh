#!/bin/sh
# Runs inside a fresh copy of the boot test's rootfs (boot-test.sh
# bench-install): installs the pinned MLflow the way mlstack-setup does, with
# pip or with uv, then starts the server as the unit does (basic-auth app,
# one worker, sqlite) and waits for /health. Cold: a fresh rootfs, no pip or
# uv cache. Prints one line: MODE install=SECONDS healthy=SECONDS.
#
# Usage: bench-install.sh pip|uv MLFLOW_VERSION UV_VERSION PORT
set -eu
mode=$1 version=$2 uv_version=$3 port=$4
now() { date +%s.%N; }
venv=/opt/mlflow

t0=$(now)
python3 -m venv "$venv"
case $mode in
pip)
	"$venv/bin/pip" install --no-cache-dir --disable-pip-version-check -q \
		"mlflow[auth]==$version" boto3
	;;
uv)
	"$venv/bin/pip" install --no-cache-dir --disable-pip-version-check -q "uv==$uv_version"
	"$venv/bin/uv" pip install --no-cache --link-mode copy --compile-bytecode -q --python "$venv/bin/python" \
		"mlflow[auth]==$version" boto3
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
MLFLOW_AUTH_CONFIG_PATH=$d/auth.ini MLFLOW_FLASK_SERVER_SECRET_KEY=bench-secret-key-0123456789 \
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false \
	"$venv/bin/mlflow" server --app-name basic-auth --host 127.0.0.1 --port "$port" --workers 1 \
	--backend-store-uri "sqlite:///$d/mlflow.db" --default-artifact-root "$d/artifacts" \
	>"$d/server.log" 2>&1 &
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
