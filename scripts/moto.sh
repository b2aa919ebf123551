#!/usr/bin/env bash
# Start/stop a local moto server for mlstack's tests.
#
#   eval "$(scripts/moto.sh start)"   # prints export lines on stdout
#   scripts/moto.sh status            # exit 0 when the server answers
#   scripts/moto.sh stop
#
# Environment:
#   MLSTACK_VENV    venv holding moto (default: REPO/.cache/venv)
#   MLSTACK_PYTHON  interpreter used to create the venv (default: python3)
#   MLSTACK_MOTO_DIR where this server's moto.pid, moto.url, moto.log live
#                   (default: REPO/.cache); a second dir runs a second server.
# Progress goes to stderr; stdout carries only the export lines.
set -euo pipefail

MOTO_VERSION=5.2.5
REGION=eu-west-3

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$REPO/scripts/venv-install.sh"
CACHE=$REPO/.cache
VENV=${MLSTACK_VENV:-$CACHE/venv}
PYTHON=${MLSTACK_PYTHON:-python3}
MOTO_DIR=${MLSTACK_MOTO_DIR:-$CACHE}
PID_FILE=$MOTO_DIR/moto.pid
URL_FILE=$MOTO_DIR/moto.url
LOG_FILE=$MOTO_DIR/moto.log
AMIS=$REPO/scripts/testdata/amis.json
# moto[server]==MOTO_VERSION and its dependencies by sha256 (scripts/lock.sh
# --refresh writes it): the same moto and botocore on any day.
LOCK=$REPO/scripts/testdata/moto-lock.txt

say() { printf 'moto.sh: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# answers URL: true when moto's dashboard endpoint replies 200. Uses the
# venv's python, not curl, which a fresh CI machine may lack.
answers() {
	"$VENV/bin/python" - "$1" <<'PY' 2>/dev/null
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1] + "/moto-api/", timeout=2) as r:
        sys.exit(0 if r.status == 200 else 1)
except Exception:
    sys.exit(1)
PY
}

# running: true when the recorded pid is alive and its URL answers.
running() {
	[[ -f $PID_FILE && -f $URL_FILE ]] || return 1
	kill -0 "$(cat "$PID_FILE")" 2>/dev/null || return 1
	answers "$(cat "$URL_FILE")"
}

# moto_ok: the venv has exactly the pinned moto, with the server extras.
moto_ok() {
	[[ -x $VENV/bin/python ]] &&
		"$VENV/bin/python" - "$MOTO_VERSION" <<'PY' 2>/dev/null
import sys, importlib.metadata as md
import flask, flask_cors  # pulled in by moto[server]
sys.exit(0 if md.version("moto") == sys.argv[1] else 1)
PY
	[[ $(cat "$VENV/.mlstack-lock" 2>/dev/null) == "$(sha256sum <"$LOCK")" ]]
}

ensure_venv() {
	if moto_ok; then
		return
	fi
	if [[ ! -x $VENV/bin/python ]]; then
		say "creating venv $VENV with $("$PYTHON" --version 2>&1)"
		"$PYTHON" -m venv "$VENV" >&2 || die "cannot create venv (on Debian: apt-get install python3-venv)"
	fi
	grep -q "^moto==$MOTO_VERSION " "$LOCK" || die "$LOCK does not pin moto $MOTO_VERSION: run scripts/lock.sh --refresh"
	say "installing moto[server]==$MOTO_VERSION into $VENV ($LOCK, by sha256)"
	venv_install "$VENV" --require-hashes --no-deps -r "$LOCK"
	sha256sum <"$LOCK" >"$VENV/.mlstack-lock"
	moto_ok || die "moto $MOTO_VERSION still not importable from $VENV"
}

free_port() {
	"$VENV/bin/python" - <<'PY'
import socket
while True:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    if port != 5000:  # MLflow's port: never take it
        print(port)
        break
PY
}

print_env() {
	local url=$1
	cat <<EOT
export AWS_ENDPOINT_URL=$url
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
export AWS_DEFAULT_REGION=$REGION
export AWS_REGION=$REGION
export AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE AWS_SESSION_TOKEN
export MLSTACK_TEST_MOTO_URL=$url
EOT
}

start() {
	mkdir -p "$CACHE" "$MOTO_DIR"
	ensure_venv
	if running; then
		say "already running at $(cat "$URL_FILE") (pid $(cat "$PID_FILE"))"
		print_env "$(cat "$URL_FILE")"
		return
	fi
	[[ -f $AMIS ]] || die "missing $AMIS"
	local attempt port url pid i
	# The port is free when asked but could be taken before moto binds it:
	# retry with a new one if moto dies at startup.
	for attempt in 1 2 3; do
		port=$(free_port)
		url=http://127.0.0.1:$port
		say "starting moto $MOTO_VERSION on $url (log: $LOG_FILE)"
		# All fds redirected: under eval "$(moto.sh start)" an inherited
		# stdout would keep the command substitution waiting forever.
		MOTO_AMIS_PATH=$AMIS nohup "$VENV/bin/python" -m moto.server \
			-H 127.0.0.1 -p "$port" </dev/null >>"$LOG_FILE" 2>&1 &
		pid=$!
		# Recorded at once, not when it answers: `stop` must find a server
		# whose start was interrupted (Ctrl-C does not reach a background job).
		echo "$pid" >"$PID_FILE"
		for ((i = 0; i < 150; i++)); do # 150 x 0.2 s = 30 s
			if ! kill -0 "$pid" 2>/dev/null; then
				rm -f "$PID_FILE"
				say "moto exited during startup (attempt $attempt); tail of log:"
				tail -n 5 "$LOG_FILE" >&2 || true
				continue 2
			fi
			if answers "$url"; then
				echo "$url" >"$URL_FILE"
				say "moto ready at $url (pid $pid)"
				print_env "$url"
				return
			fi
			sleep 0.2
		done
		kill "$pid" 2>/dev/null || true
		rm -f "$PID_FILE"
		die "moto did not answer on $url within 30 s; see $LOG_FILE"
	done
	die "moto failed to start 3 times; see $LOG_FILE"
}

stop() {
	if [[ ! -f $PID_FILE ]]; then
		say "not running (no $PID_FILE)"
		return
	fi
	local pid i
	pid=$(cat "$PID_FILE")
	if kill "$pid" 2>/dev/null; then
		for ((i = 0; i < 50; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			kill -9 "$pid" 2>/dev/null || true
		fi
		say "stopped moto (pid $pid)"
	else
		say "moto (pid $pid) was not running"
	fi
	rm -f "$PID_FILE" "$URL_FILE"
}

case ${1:-} in
start) start ;;
stop) stop ;;
status)
	if running; then
		cat "$URL_FILE"
	else
		say "not running"
		exit 1
	fi
	;;
*)
	echo "usage: $0 start|stop|status" >&2
	exit 2
	;;
esac
