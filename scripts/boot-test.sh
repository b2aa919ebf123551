#!/usr/bin/env bash
# Boot test: proves that the exact user-data `mlstack up` sends turns a
# fresh Debian-family machine into a working tracking server.
#
#   scripts/boot-test.sh                     the test (root; CI runs it via scripts/test.sh)
#   MLSTACK_BOOT_SUITE=trixie scripts/boot-test.sh   the same on Debian trixie
#   scripts/boot-test.sh bench-install [N]   uv vs pip, installing the lock cold, N runs each
#
# The test: a private moto server; `mlstack up --stack boot` in the
# background against it; the instance's user-data, public DNS name and IP read
# back from moto; ec2-metadata-mock answering IMDSv2 on 169.254.169.254:80
# with those values and credentials of the instance role; a cached Debian
# rootfs (debootstrap: systemd, cloud-init, curl; no python3-venv, no apt
# lists, as on the Ubuntu image, where neither is there at first boot)
# copied fresh, seeded as NoCloud and booted with systemd-nspawn on the host
# network, so cloud-init and systemd run the bootstrap for real. The public
# DNS name points at 127.0.0.1 in /etc/hosts, so `up`'s own health wait and a
# real MLflow client use the real tracking URI. The instance reads its
# secrets from moto's SSM with the role's credentials from IMDS, makes its
# TLS key and certificate, and publishes the certificate and SSH host key
# there; up pins them. Then: up exits 0 with an https URI; the pinned
# certificate and host key are the instance's; the user-data holds no
# secret and no private key; the client,
# with exactly the variables `mlstack env` prints, logs params, metrics and an
# artifact, signed in as up's creator (alice, not the admin); a second user
# (bob, `mlstack users add`, `env --user bob`) sees alice's experiment and
# run and logs into it, and gets 403 deleting them or managing users;
# the artifact is in the stack bucket; 401 without credentials; a
# foreign Host is refused; plain HTTP gets nothing; Debian's chromium,
# headless, with the certificate pinned, logs in to the UI at the tracking
# URI and sees the client's experiment, run and metric; `mlstack check` passes;
# `up --artifacts proxied` switches the live stack (the test restarts the
# server where EC2 would reboot it): the access key is gone, the client
# with no AWS variable logs and reads back an artifact through the server,
# which stores it in the bucket, and check passes the proxied way; a backup
# of both databases lands under backups/; the instance is replaced (a clean
# stop backs up the last change, `down --keep-data`, `up`, a second boot from
# a fresh rootfs): the new server restores the backup, and the client finds
# every run, metric, artifact and user; twice: replaced by `up --instance-type
# t3.micro --yes` (stop, launch, restore, health, the old one terminated),
# then by `down --keep-data` and `up`;
# the server reads S3 through
# the role from IMDS; MLflow came from the lock, hash-checked, without apt;
# the server is one process under MLSTACK_BOOT_MAX_RSS; RSS and
# boot-to-healthy are reported; `mlstack down` leaves nothing in moto.
# Everything is undone on exit.
#
# Stand-ins: the instance runs Ubuntu 24.04 (Python 3.12, cloud-init 24+); the
# container runs Debian bookworm (Python 3.11, cloud-init 22.4) or, with
# MLSTACK_BOOT_SUITE=trixie, Debian trixie (Python 3.13, cloud-init 25.1).
# Swap cannot be enabled in a container: cloud-init 22.4 warns about it,
# 25.1 counts it as its one error, which is all the test lets pass.
#
# Environment:
#   MLSTACK_BOOT_CACHE  cache of rootfs and tools (default /var/cache/mlstack-boot)
#   MLSTACK_BOOT_KEEP=1 keep the work directory (logs, rootfs copy) on exit
#   MLSTACK_BOOT_HEALTH_TIMEOUT  seconds to wait for health (default 720)
#   MLSTACK_BOOT_SUITE  the Debian release to boot: bookworm (default) or trixie
#   MLSTACK_BOOT_MAX_RSS  fail above this server RSS in MiB (default 300; 310
#                       with MLSTACK_BOOT_DB=postgres: psycopg2 and its
#                       connections, measured 298-299 against sqlite's 293)
#   MLSTACK_BOOT_MLFLOW_VERSION  `up --mlflow-version` (default: the locked
#                       version); another one must come from version pins and
#                       run as `mlflow server` (two processes, no RSS limit)
#   MLSTACK_BOOT_DB     sqlite (default) or postgres: `up --db postgres`, with
#                       a private cluster of Debian's PostgreSQL on
#                       127.0.0.2:5432 playing the RDS database (scripts/boot/rds.py
#                       gives it the master user and password mlstack stored,
#                       as RDS would); instead of the backup phases, the data
#                       is in PostgreSQL, a replacement and down --keep-data +
#                       up (a snapshot restored, a new password) keep it
# Secrets (MLflow password, secret keys) are never printed: every log shown
# goes through scripts/boot/mask.py.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

CACHE=${MLSTACK_BOOT_CACHE:-/var/cache/mlstack-boot}
HEALTH_TIMEOUT=${MLSTACK_BOOT_HEALTH_TIMEOUT:-720}
MAX_RSS=${MLSTACK_BOOT_MAX_RSS:-$([[ ${MLSTACK_BOOT_DB:-} == postgres ]] && echo 310 || echo 300)}
LOCKED_VERSION=$(sed -n 's/^#@ mlflow //p' templates/mlflow-lock.txt)
MLFLOW_VERSION=${MLSTACK_BOOT_MLFLOW_VERSION:-$LOCKED_VERSION}
STACK=boot
REGION=eu-west-3
SUITE=${MLSTACK_BOOT_SUITE:-bookworm}
DB=${MLSTACK_BOOT_DB:-sqlite}
case $DB in
sqlite | postgres) ;;
*)
	echo "boot-test: MLSTACK_BOOT_DB must be sqlite or postgres, not '$DB'" >&2
	exit 2
	;;
esac
# The RDS stand-in's address: loopback, but not the 127.0.0.1 a system
# PostgreSQL may listen on.
PG_ADDR=127.0.0.2
case $SUITE in
bookworm | trixie) ;;
*)
	echo "boot-test: MLSTACK_BOOT_SUITE must be bookworm or trixie, not '$SUITE'" >&2
	exit 2
	;;
esac
MIRROR=http://deb.debian.org/debian
# Tools the Ubuntu image has that the bootstrap relies on (python3 comes
# with cloud-init), plus what cloud-init and systemd need to boot. Not
# python3-venv: Ubuntu's image lacks it too.
ROOTFS_PACKAGES=(systemd systemd-sysv dbus cloud-init curl ca-certificates iproute2 procps sudo locales openssh-client)
# Run inside the new rootfs with the packages as arguments. en_US.UTF-8 is
# generated and set as on the Ubuntu image, so cloud-init's locale module has
# nothing to do (Debian's locale-gen ignores the locale cloud-init passes).
# shellcheck disable=SC2016 # expanded by the inner sh
ROOTFS_SETUP='set -e
apt-get update -q
apt-get install -y -q --no-install-recommends "$@"
apt-get clean
rm -rf /var/lib/apt/lists/*
sed -i "s/^# *en_US.UTF-8 UTF-8/en_US.UTF-8 UTF-8/" /etc/locale.gen
locale-gen
update-locale LANG=en_US.UTF-8'
AEMM_VERSION=v1.13.0
IMDS_IP=169.254.169.254
HOSTS_TAG="# mlstack-boot-test $$"

say() { printf '\n== boot-test: %s\n' "$*" >&2; }
info() { printf 'boot-test: %s\n' "$*" >&2; }
die() {
	printf '\nboot-test: FAILED: %s\n' "$*" >&2
	exit 1
}

# ---------------------------------------------------------------- rootfs

# The cache key covers everything that goes into the rootfs.
rootfs_key() {
	{
		echo "v1 $SUITE $MIRROR minbase"
		echo "$ROOTFS_SETUP"
		printf '%s\n' "${ROOTFS_PACKAGES[@]}"
		rootfs_cloud_cfg
	} | sha256sum | cut -c1-16
}

# Test-only cloud-init settings: read the NoCloud seed and nothing else (no
# EC2 datasource probing), and leave the host network alone (the container
# shares it).
rootfs_cloud_cfg() {
	cat <<'EOF'
datasource_list: [NoCloud, None]
network:
  config: disabled
EOF
}

# ensure_rootfs prints the path of a complete cached rootfs, building it
# under a lock when missing.
ensure_rootfs() {
	local dir log
	dir=$CACHE/rootfs/$SUITE-$(rootfs_key)
	log=$CACHE/debootstrap-$SUITE.log
	mkdir -p "$CACHE/rootfs"
	exec 9>"$CACHE/lock"
	flock 9
	if [[ ! -f $dir/.mlstack-complete ]]; then
		say "building the $SUITE rootfs $dir (cached for later runs)"
		rm -rf "$dir.tmp"
		# Only the base via debootstrap: its resolver cannot pick providers of
		# virtual packages (python3-cryptography needs one); apt can.
		debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus \
			"$SUITE" "$dir.tmp" "$MIRROR" >"$log" 2>&1 ||
			{ tail -n 30 "$log" >&2; die "debootstrap failed (log: $log)"; }
		systemd-nspawn -q --register=no --keep-unit -D "$dir.tmp" --pipe \
			-E DEBIAN_FRONTEND=noninteractive \
			sh -c "$ROOTFS_SETUP" sh "${ROOTFS_PACKAGES[@]}" </dev/null >>"$log" 2>&1 ||
			{ tail -n 30 "$log" >&2; die "installing ${ROOTFS_PACKAGES[*]} failed"; }
		rootfs_cloud_cfg >"$dir.tmp/etc/cloud/cloud.cfg.d/90_mlstack_boot_test.cfg"
		# A unique machine id per boot; nspawn gives a transient one when empty.
		: >"$dir.tmp/etc/machine-id"
		touch "$dir.tmp/.mlstack-complete"
		mv "$dir.tmp" "$dir"
		info "rootfs ready ($(du -sh "$dir" | cut -f1))"
	fi
	# Suites, and other branches' package lists, share this cache: drop only
	# the builds nobody has used for two weeks (rootfs-* is the old layout).
	touch "$dir/.mlstack-complete"
	local old
	for old in "$CACHE"/rootfs/* "$CACHE"/rootfs-*; do
		[[ $old != "$dir" && -d $old ]] || continue
		if [[ -z $(find "$old" -maxdepth 1 -name .mlstack-complete -mtime -14) ]]; then
			rm -rf "$old"
		fi
	done
	flock -u 9
	exec 9>&-
	echo "$dir"
}

# fresh_rootfs SRC DST: a private copy, so the cache stays clean.
fresh_rootfs() {
	cp -a --reflink=auto "$1" "$2"
	rm -f "$2/.mlstack-complete"
}

# ---------------------------------------------------------------- tools

need_root_tools() {
	((EUID == 0)) || die "must run as root (systemd-nspawn, /etc/hosts, an address on lo, port 80)"
	local missing=() t
	for t in debootstrap systemd-nspawn nsenter ip curl flock go python3 sha256sum openssl ssh-keygen chromium; do
		command -v "$t" >/dev/null || missing+=("$t")
	done
	if [[ $DB == postgres ]]; then
		compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(initdb)
		for t in psql runuser; do
			command -v "$t" >/dev/null || missing+=("$t")
		done
	fi
	((${#missing[@]} == 0)) || die "missing tools: ${missing[*]} (Debian: apt-get install debootstrap systemd-container curl util-linux iproute2 openssl openssh-client chromium postgresql)"
}

# ensure_aemm prints the path of ec2-metadata-mock, built once from the Go module proxy.
ensure_aemm() {
	local bin=$CACHE/bin/ec2-metadata-mock-$AEMM_VERSION
	if [[ ! -x $bin ]]; then
		say "building ec2-metadata-mock $AEMM_VERSION"
		mkdir -p "$CACHE/bin"
		GOBIN=$CACHE/bin.tmp go install "github.com/aws/amazon-ec2-metadata-mock/cmd/ec2-metadata-mock@$AEMM_VERSION" >&2
		mv "$CACHE/bin.tmp/ec2-metadata-mock" "$bin"
		rmdir "$CACHE/bin.tmp" 2>/dev/null || true
	fi
	echo "$bin"
}

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# now: seconds since the epoch with milliseconds.
now() { date +%s.%3N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# ---------------------------------------------------------------- cleanup

WORK=
# The private moto server's directory (scripts/moto.sh's MLSTACK_MOTO_DIR):
# set before it starts, so cleanup stops it.
MOTO_DIR=
declare -a PIDS=()
NSPAWN_PID=
HOSTS_ADDED=
IMDS_ADDED=
# The RDS stand-in's cluster: its directory (the postgres user's), and pg_ctl.
PG_DIR=
PG_CTL=

# stop_container: orderly poweroff (nspawn turns SIGTERM into SIGRTMIN+3 for
# the container's systemd), then SIGKILL after 30 s.
stop_container() {
	[[ -n $NSPAWN_PID ]] || return 0
	if kill -0 "$NSPAWN_PID" 2>/dev/null; then
		kill -TERM "$NSPAWN_PID" 2>/dev/null || true
		local i
		for ((i = 0; i < 60; i++)); do
			kill -0 "$NSPAWN_PID" 2>/dev/null || break
			sleep 0.5
		done
		if kill -0 "$NSPAWN_PID" 2>/dev/null; then
			info "container did not power off in 30 s: killing it"
			kill -KILL "$NSPAWN_PID" 2>/dev/null || true
		fi
	fi
	wait "$NSPAWN_PID" 2>/dev/null || true
	NSPAWN_PID=
}

remove_hosts_line() {
	[[ -n $HOSTS_ADDED ]] || return 0
	local kept
	kept=$(grep -vF "$HOSTS_TAG" /etc/hosts || true)
	# Rewrite in place (not a rename): /etc/hosts may be a bind mount.
	printf '%s\n' "$kept" >/etc/hosts
	HOSTS_ADDED=
}

cleanup() {
	local status=$?
	set +e
	stop_container
	local pid
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null
	done
	for pid in "${PIDS[@]}"; do
		wait "$pid" 2>/dev/null
	done
	if [[ -n $MOTO_DIR ]]; then
		MLSTACK_MOTO_DIR=$MOTO_DIR "$REPO/scripts/moto.sh" stop
	fi
	if [[ -n $PG_DIR ]]; then
		runuser -u postgres -- "$PG_CTL" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1
		rm -rf "$PG_DIR"
	fi
	remove_hosts_line
	if [[ -n $IMDS_ADDED ]]; then
		ip addr del "$IMDS_IP/32" dev lo 2>/dev/null
	fi
	if [[ -n $WORK ]]; then
		if [[ ${MLSTACK_BOOT_KEEP:-} == 1 ]]; then
			info "kept $WORK"
		else
			rm -rf "$WORK"
		fi
	fi
	exit "$status"
}

# ---------------------------------------------------------------- masking

SECRETS=
# masked CMD...: runs CMD with stdout and stderr masked; keeps its status.
masked() {
	"$@" 2>&1 | python3 "$REPO/scripts/boot/mask.py" "$SECRETS"
}
# show FILE [LINES]: the (masked) tail of a log.
show() {
	[[ -f $1 ]] || return 0
	printf -- '--- %s (last %s lines) ---\n' "$(basename "$1")" "${2:-40}" >&2
	tail -n "${2:-40}" "$1" | python3 "$REPO/scripts/boot/mask.py" "$SECRETS" >&2
}
# add_secrets_from_json FILE KEY...: records values (anywhere in the JSON) as secrets.
add_secrets_from_json() {
	python3 - "$@" >>"$SECRETS" <<'PY'
import json, sys
keys = set(sys.argv[2:])
def walk(v):
    if isinstance(v, dict):
        for k, x in v.items():
            if k in keys and isinstance(x, str):
                print(x)
            walk(x)
    elif isinstance(v, list):
        for x in v:
            walk(x)
walk(json.load(open(sys.argv[1])))
PY
}

# ---------------------------------------------------------------- container

# leader: PID (host view) of the container's init.
leader() {
	local pid
	pid=$(pgrep -P "$NSPAWN_PID" | head -n 1) || true
	[[ -n $pid ]] || return 1
	echo "$pid"
}

# in_container CMD...: runs CMD inside the booted container's namespaces.
in_container() {
	local l
	l=$(leader) || die "container has no init process"
	nsenter --target "$l" --mount --uts --ipc --pid -- "$@"
}

# boot ROOTFS LOG: boots it in the background; NSPAWN_PID is set.
boot() {
	systemd-nspawn --register=no --keep-unit -q -M "mlstack-$STACK-$$" -D "$1" -b \
		</dev/null >"$2" 2>&1 &
	NSPAWN_PID=$!
}

# trust_host_tls ROOTFS: this machine's TLS trust store, which holds the CA
# of the sandbox's egress proxy; pip (certifi) and uv (webpki roots) are told
# to use it. Not needed on EC2, where PyPI's certificate is public.
trust_host_tls() {
	install -m 0644 /etc/ssl/certs/ca-certificates.crt "$1/etc/ssl/certs/ca-certificates.crt"
	printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' >"$1/etc/pip.conf"
	mkdir -p "$1/etc/uv"
	printf 'native-tls = true\n' >"$1/etc/uv/uv.toml"
}

# seed ROOTFS USER_DATA INSTANCE_ID HOSTNAME: the NoCloud seed cloud-init reads.
seed() {
	local d=$1/var/lib/cloud/seed/nocloud
	mkdir -p "$d"
	install -m 0600 "$2" "$d/user-data"
	printf 'instance-id: %s\nlocal-hostname: %s\n' "$3" "$4" >"$d/meta-data"
}

# server_rss: "RSS PSS N" (MiB, MiB, process count) of the server's processes.
server_rss() {
	in_container sh -s <"$REPO/scripts/boot/rss.sh"
}

# ================================================================ the test

# State the phases share, set by the phase named and read by later ones
# (besides WORK, MOTO_DIR, NSPAWN_PID and SECRETS above):
#   T_START          start of the test (tools)
#   ROOTFS AEMM      the cached rootfs and ec2-metadata-mock binary (tools)
#   MLFLOW_VENV      the venv with the pinned MLflow for the client (tools)
#   STATE UP_PID     mlstack's state dir and the background `up` (start_up)
#   INSTANCE_ID PUBLIC_DNS PUBLIC_IP ROLE_NAME ROLE_ACCESS_KEY_ID
#                    the instance as moto has it (start_up, from instance.env)
#   T_BOOT           when the container was started (boot_container)
#   BOOT_TO_HEALTHY  seconds from boot to /health 200 (wait_healthy)
#   RUN_ID BUCKET ARTIFACT_KEY  the client's run and artifact (run_client)
#   CERT PRIVATE_KEYS  the pinned certificate; the instance's private keys (check_pins)
#   CURL_CFG         curl config with the tracking credentials (check_auth_hosts)
#   SERVER_RSS SERVER_PSS SERVER_PROCS  what measure_rss measured
T_START=
ROOTFS=
AEMM=
MLFLOW_VENV=
STATE=
UP_PID=
T_BOOT=
BOOT_TO_HEALTHY=
RUN_ID=
BUCKET=
ARTIFACT_KEY=
CURL_CFG=
CERT=
PRIVATE_KEYS=()
AEMM_PID=
SERVER_RSS=
SERVER_PSS=
SERVER_PROCS=

boot_test() {
	prepare
	tools
	start_moto
	if [[ $DB == postgres ]]; then
		start_rds
		start_up --db postgres --db-class db.t4g.micro
	else
		start_up
	fi
	start_imds
	boot_container
	wait_healthy
	check_up_result
	check_cloud_init
	check_install
	run_client
	check_artifact
	check_auth_hosts
	check_role_s3
	measure_rss
	check_team
	check_ui
	run_check
	check_bytecode
	report_numbers
	check_proxied
	if [[ $DB == postgres ]]; then
		check_in_postgres
	else
		check_backup
	fi
	replace_by_up
	replace_by_keep
	scan_secrets
	down_and_leftovers
	say "PASSED in $(elapsed "$T_START" "$(now)") s: boot to healthy $BOOT_TO_HEALTHY s, server RSS $SERVER_RSS MiB (PSS $SERVER_PSS MiB)"
}

# prepare: root and tools, the work directory, cleanup on exit, the run lock.
prepare() {
	need_root_tools
	command -v shellcheck >/dev/null || die "shellcheck is missing"
	# The helpers that .ci/run's `shellcheck scripts/*.sh` does not reach.
	shellcheck scripts/boot/*.sh || die "shellcheck: scripts/boot/*.sh"
	WORK=$(mktemp -d /var/tmp/mlstack-boot.XXXXXX)
	SECRETS=$WORK/secrets
	: >"$SECRETS"
	chmod 0600 "$SECRETS"
	trap cleanup EXIT
	trap 'exit 130' INT TERM
	# One boot test at a time per machine: port 5000, port 80, the IMDS
	# address and /etc/hosts are machine-wide.
	mkdir -p "$CACHE"
	exec 8>"$CACHE/run.lock"
	if ! flock -n 8; then
		info "another boot test is running; waiting for it (up to 30 min)"
		flock -w 1800 8 || die "another boot test still holds $CACHE/run.lock"
	fi
}

tools() {
	T_START=$(now)
	say "tools"
	ROOTFS=$(ensure_rootfs)
	AEMM=$(ensure_aemm)
	MLFLOW_VENV=$(scripts/mlflow-venv.sh)
	go build -o "$WORK/mlstack" ./cmd/mlstack
	go build -o "$WORK/boot" ./scripts/boot
	go build -o "$WORK/secretscan" ./scripts/secretscan
	if ss -ltn 'sport = :5000' | grep -q LISTEN; then
		die "port 5000 is taken on this machine; the booted server needs it"
	fi
	if ss -ltn 'sport = :80' | grep -q LISTEN; then
		die "port 80 is taken on this machine; the IMDS emulator needs it"
	fi
}

start_moto() {
	say "moto"
	# A private server, not the one scripts/test.sh shares: its pid, URL and
	# log live in $MOTO_DIR. moto.sh prints the AWS_* export lines for it.
	MOTO_DIR=$WORK/moto
	local moto_env
	# Assign first: eval "$(cmd)" would swallow a failed start.
	moto_env=$(MLSTACK_MOTO_DIR=$MOTO_DIR scripts/moto.sh start) ||
		{ show "$MOTO_DIR/moto.log"; die "moto did not start"; }
	eval "$moto_env"
	info "moto at $AWS_ENDPOINT_URL"
	export AWS_DEFAULT_REGION=$REGION AWS_REGION=$REGION
	unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL_S3
}

# start_up: `mlstack up` in the background; the instance it launched, as
# moto has it, in $WORK (user-data, aemm.json, instance.env).
# start_up [FLAG...]: mlstack up in the background, with more flags.
start_up() {
	launch_up "$@"
	find_instance
}

# launch_up [FLAG...]: mlstack up in the background, with more flags; sets UP_PID.
launch_up() {
	say "mlstack up --stack $STACK $* (in the background)"
	STATE=$WORK/state
	"$WORK/mlstack" up --stack "$STACK" --allow-cidr 127.0.0.1/32 --state-dir "$STATE" --timeout 15m --user alice \
		--mlflow-version "$MLFLOW_VERSION" "$@" \
		</dev/null >"$WORK/up.out" 2>"$WORK/up.log" &
	UP_PID=$!
	PIDS+=("$UP_PID")
}

# find_instance: the stack's running instance in moto, its user-data, and
# IMDS values with credentials of its role (boot helper); sets INSTANCE_ID,
# PUBLIC_DNS, PUBLIC_IP, ROLE_NAME, ROLE_ACCESS_KEY_ID. The role's session
# token goes to role-tokens too (see scan_secrets).
find_instance() {
	if ! "$WORK/boot" instance -stack "$STACK" -dir "$WORK" -timeout 2m; then
		show "$WORK/up.log"
		die "no instance appeared in moto"
	fi
	add_secrets_from_json "$WORK/aemm.json" SecretAccessKey Token
	add_secrets_from_json "$STATE/$STACK/state.json" secret_access_key mlflow_password flask_secret_key alice
	python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["metadata"]["values"]["iam-security-credentials"]["Token"])' \
		"$WORK/aemm.json" >>"$WORK/role-tokens" || die "no role session token in aemm.json"
	# shellcheck disable=SC1091 # written by the boot helper just now
	. "$WORK/instance.env"
	info "instance $INSTANCE_ID: $PUBLIC_DNS ($PUBLIC_IP), role $ROLE_NAME"
}

start_imds() {
	say "IMDSv2 emulator on $IMDS_IP:80, public DNS name -> 127.0.0.1"
	if ! ip -4 addr show dev lo | grep -q " $IMDS_IP/32 "; then
		ip addr add "$IMDS_IP/32" dev lo
		IMDS_ADDED=1
	fi
	(cd "$WORK" && HOME=$WORK exec "$AEMM" -c "$WORK/aemm.json" -n "$IMDS_IP" -p 80 -I) \
		</dev/null >"$WORK/aemm.log" 2>&1 &
	AEMM_PID=$!
	PIDS+=("$AEMM_PID")
	local token i
	for ((i = 0; i < 50; i++)); do
		token=$(curl -fsS -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' "http://$IMDS_IP/latest/api/token" 2>/dev/null) && break
		sleep 0.2
	done
	[[ -n ${token:-} ]] || { show "$WORK/aemm.log"; die "ec2-metadata-mock gives no IMDSv2 token"; }
	[[ $(curl -fsS -H "X-aws-ec2-metadata-token: $token" "http://$IMDS_IP/latest/meta-data/public-hostname") == "$PUBLIC_DNS" ]] ||
		die "IMDS does not serve the instance's public-hostname"
	[[ $(curl -fsS -H "X-aws-ec2-metadata-token: $token" "http://$IMDS_IP/latest/meta-data/iam/security-credentials/") == "$ROLE_NAME" ]] ||
		die "IMDS does not serve the instance role"
	[[ $(curl -s -o /dev/null -w '%{http_code}' "http://$IMDS_IP/latest/meta-data/public-hostname") == 401 ]] ||
		die "IMDS answers without a token: IMDSv2 must be required"
	printf '127.0.0.1 %s %s\n' "$PUBLIC_DNS" "$HOSTS_TAG" >>/etc/hosts
	HOSTS_ADDED=1
}

# boot_container: a fresh rootfs copy seeded with the user-data, booted.
boot_container() {
	say "booting the exact user-data under cloud-init + systemd (systemd-nspawn, $SUITE)"
	local root=$WORK/rootfs t_copy
	t_copy=$(now)
	fresh_rootfs "$ROOTFS" "$root"
	info "fresh rootfs copy in $(elapsed "$t_copy" "$(now)") s"
	trust_host_tls "$root"
	[[ $DB == postgres ]] && rds_host "$root"
	seed "$root" "$WORK/user-data" "$INSTANCE_ID" "${PUBLIC_DNS%%.*}"
	T_BOOT=$(now)
	boot "$root" "$WORK/console.log"
}

# wait_healthy: waits for /health 200 by the public DNS name; sets
# BOOT_TO_HEALTHY (seconds since T_BOOT, set by boot_container).
wait_healthy() {
	info "container booting (nspawn pid $NSPAWN_PID); waiting up to ${HEALTH_TIMEOUT}s for https://$PUBLIC_DNS:5000/health"
	local deadline=$((SECONDS + HEALTH_TIMEOUT)) last_note=$SECONDS last_probe=$SECONDS dead=0 unit code
	while :; do
		# -k for this timing probe alone (no credentials; up may not have
		# pinned the certificate yet): every later check pins it.
		code=$(curl -sk -o /dev/null -w '%{http_code}' --max-time 3 "https://$PUBLIC_DNS:5000/health" || true)
		[[ $code == 200 ]] && break
		kill -0 "$NSPAWN_PID" 2>/dev/null || { show "$WORK/console.log" 60; die "the container stopped before the server was healthy"; }
		# Fail fast once cloud-init is done and the unit is not even trying.
		if ((SECONDS - last_probe >= 5)) && in_container test -e /var/lib/cloud/instance/boot-finished 2>/dev/null; then
			last_probe=$SECONDS
			unit=$(in_container systemctl is-active mlflow.service 2>/dev/null || true)
			case $unit in
			active | activating | reloading) dead=0 ;;
			*) dead=$((dead + 1)) ;;
			esac
			if ((dead >= 3)); then
				diagnose
				die "cloud-init finished but mlflow.service is '$unit'"
			fi
		fi
		if ((SECONDS > deadline)); then
			diagnose
			die "the server was not healthy ${HEALTH_TIMEOUT}s after boot"
		fi
		if ((SECONDS - last_note >= 30)); then
			info "still waiting ($((SECONDS - deadline + HEALTH_TIMEOUT)) s): $(in_container sh -c 'tail -n 1 /var/log/cloud-init-output.log 2>/dev/null' | python3 scripts/boot/mask.py "$SECRETS" | cut -c1-120)"
			last_note=$SECONDS
		fi
		sleep 0.5
	done
	BOOT_TO_HEALTHY=$(elapsed "$T_BOOT" "$(now)")
	info "healthy $BOOT_TO_HEALTHY s after boot"
}

check_up_result() {
	say "mlstack up's own health wait"
	local up_status=0
	wait "$UP_PID" || up_status=$?
	show "$WORK/up.log" 12
	((up_status == 0)) || die "mlstack up exited $up_status"
	local uri
	uri=$(cat "$WORK/up.out")
	[[ $uri == "https://$PUBLIC_DNS:5000" ]] || die "up printed '$uri', want https://$PUBLIC_DNS:5000"
	check_pins
}

# check_pins: what up pinned is what the instance made: its certificate
# (served on 5000 and published in SSM) and its SSH host key (known_hosts).
check_pins() {
	say "the pinned certificate and host key are the instance's"
	CERT=$STATE/$STACK/server.crt
	cmp -s "$CERT" "$WORK/rootfs/var/lib/mlflow/tls/server.crt" ||
		die "the pinned $CERT is not the certificate the instance made"
	local served host_pub
	served=$(openssl s_client -connect 127.0.0.1:5000 -servername "$PUBLIC_DNS" </dev/null 2>/dev/null | openssl x509) ||
		die "no certificate served on 127.0.0.1:5000"
	[[ $served == "$(openssl x509 <"$CERT")" ]] || die "the server serves another certificate than the pinned one"
	host_pub=$(cut -d' ' -f1,2 "$WORK/rootfs/etc/ssh/ssh_host_ed25519_key.pub") ||
		die "cloud-init made no ed25519 host key"
	grep -qF "$PUBLIC_DNS,$PUBLIC_IP $host_pub" "$STATE/$STACK/known_hosts" ||
		{ cat "$STATE/$STACK/known_hosts" >&2; die "known_hosts does not pin the instance's host key ($host_pub) for $PUBLIC_DNS,$PUBLIC_IP"; }
	# The private halves never left the instance: secrets to look for.
	PRIVATE_KEYS+=("$WORK/rootfs/var/lib/mlflow/tls/server.key" "$WORK/rootfs/etc/ssh/ssh_host_ed25519_key")
	info "certificate $(openssl x509 -noout -fingerprint -sha256 <"$CERT" | cut -d= -f2) for $PUBLIC_DNS, $PUBLIC_IP; host key $(ssh-keygen -lf "$WORK/rootfs/etc/ssh/ssh_host_ed25519_key.pub" | cut -d' ' -f2)"
}

check_cloud_init() {
	say "cloud-init and systemd inside the container"
	in_container cloud-init status --long 2>&1 | python3 scripts/boot/mask.py "$SECRETS" >&2 || true
	# Done, or (cloud-init 25 counts what 22.4 warns about) done with the one
	# error a container must give: swapon is not permitted in it.
	local status
	# It exits 1 on "error": keep the JSON all the same.
	status=$(in_container cloud-init status --format json 2>/dev/null || true)
	if ! python3 -c '
import json, sys
s = json.load(sys.stdin)
errors = s.get("errors") or []
warnings = [w for ws in (s.get("recoverable_errors") or {}).values() for w in ws]
if s["status"] == "done" or (s["status"] == "error" and s.get("extended_status", "").endswith("done")
        and errors and all("swapon" in e for e in errors) and all("mounts" in w for w in warnings)):
    sys.exit(0)
sys.exit(1)' <<<"$status"; then
		die "cloud-init did not finish cleanly (status above)"
	fi
	in_container systemctl is-enabled mlflow.service >/dev/null || die "mlflow.service is not enabled (would not start on boot)"
	in_container systemctl is-active mlflow.service >/dev/null || die "mlflow.service is not active"
	in_container grep -q "MLFLOW_SERVER_ALLOWED_HOSTS=$PUBLIC_DNS,$PUBLIC_DNS:5000,$PUBLIC_IP,$PUBLIC_IP:5000," /run/mlflow/allowed-hosts.env ||
		die "allowed-hosts.env does not hold the IMDS public name and IP"
	in_container grep -q "MLFLOW_SERVER_CORS_ALLOWED_ORIGINS=https://$PUBLIC_DNS:5000,https://$PUBLIC_IP:5000," /run/mlflow/allowed-hosts.env ||
		die "allowed-hosts.env does not hold the UI's origins"
	grep -q "mlstack-keys: secrets read from SSM" <<<"$(journal mlflow.service)" ||
		die "mlflow.service did not read its secrets from SSM"
	info "mlflow.service enabled and active; allowed hosts and CORS origins from IMDS; secrets from SSM"
}

# check_install: MLflow came from the lock with uv, hash-checked (another
# version: from version pins, and up said so), and nothing ran apt (the
# rootfs has no package lists and no python3-venv, like the Ubuntu image
# at first boot).
check_install() {
	say "the install: MLflow $MLFLOW_VERSION, locked $LOCKED_VERSION, no apt"
	local lines
	lines=$(in_container sh -c 'grep -h "mlstack-setup:" /var/log/cloud-init-output.log' | python3 scripts/boot/mask.py "$SECRETS" || true)
	printf '%s\n' "$lines" >&2
	if [[ $MLFLOW_VERSION == "$LOCKED_VERSION" ]]; then
		grep -q "from the lock (sha256-checked) with uv" <<<"$lines" || die "mlstack-setup did not install from the lock"
	else
		grep -q "MLflow $MLFLOW_VERSION is not the locked $LOCKED_VERSION: installing it by version pins" <<<"$lines" ||
			die "mlstack-setup did not say it installs MLflow $MLFLOW_VERSION by version pins"
		grep -q "MLflow $MLFLOW_VERSION is not the locked $LOCKED_VERSION" "$WORK/up.log" ||
			die "mlstack up did not say MLflow $MLFLOW_VERSION is not the locked version"
	fi
	grep -q "installed with uv" <<<"$lines" || die "mlstack-setup did not install with uv"
	# The lock came from the stack bucket, its sha256 the one the user-data pins.
	in_container grep -q "^mlstack-s3get: .*/bootstrap/mlflow-lock-x86_64-.*sha256 checked" /var/log/cloud-init-output.log ||
		die "the lock was not fetched from the bucket and checked"
	grep -q "installed MLflow $MLFLOW_VERSION\$" <<<"$lines" || die "the venv does not hold MLflow $MLFLOW_VERSION"
	if in_container sh -c 'ls /var/lib/apt/lists/ | grep -q _Packages'; then
		die "something ran apt-get update during the boot"
	fi
	# shellcheck disable=SC2016 # a dpkg-query format, not a shell expansion
	if in_container dpkg-query -W -f '${Status}' python3-venv 2>/dev/null | grep -q 'ok installed'; then
		die "python3-venv got installed"
	fi
	info "MLflow $MLFLOW_VERSION installed with uv; no apt lists, no python3-venv"
}

# run_client: the MLflow client logs a run; sets RUN_ID, BUCKET, ARTIFACT_KEY.
run_client() {
	say "a real MLflow client with exactly the variables \`mlstack env\` prints"
	"$WORK/mlstack" env --stack "$STACK" --state-dir "$STATE" >"$WORK/env.sh"
	local names
	names=$(sed -n 's/^export \([A-Za-z0-9_]*\)=.*/\1/p' "$WORK/env.sh" | sort | tr '\n' ' ')
	info "variables: $names"
	[[ $names == "AWS_ACCESS_KEY_ID AWS_DEFAULT_REGION AWS_SECRET_ACCESS_KEY MLFLOW_S3_ENDPOINT_URL MLFLOW_TRACKING_PASSWORD MLFLOW_TRACKING_SERVER_CERT_PATH MLFLOW_TRACKING_URI MLFLOW_TRACKING_USERNAME " ]] ||
		die "unexpected variables from mlstack env: $names"
	mkdir -p "$WORK/home"
	if ! client "$WORK/env.sh" client; then
		show "$WORK/client.log" 40
		die "the MLflow client failed"
	fi
	local facts
	facts=$(tail -n 1 "$WORK/client.out")
	BUCKET=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["bucket"])' "$facts")
	ARTIFACT_KEY=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["key"])' "$facts")
	RUN_ID=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["run_id"])' "$facts")
	info "run $RUN_ID logged params, 5 metrics, an artifact; read back: ok"
}

# client ENV_FILE NAME: scripts/boot/NAME.py with the pinned MLflow venv's
# Python and exactly the variables ENV_FILE (`mlstack env`'s output) sets,
# nothing else of this shell; its output in NAME.out, NAME.log.
client() {
	mkdir -p "$WORK/home"
	# shellcheck disable=SC2016 # expanded by the inner sh
	env -i PATH=/usr/bin:/bin HOME="$WORK/home" sh -c '. "$1" && exec "$2" "$3"' sh \
		"$1" "$MLFLOW_VENV/bin/python" "scripts/boot/$2.py" >"$WORK/$2.out" 2>"$WORK/$2.log"
}

# check_team: a second user, made with `mlstack users add` through the
# server's API, with the variables `mlstack env --user bob` prints: sees the
# first user's (alice's, up's creator) experiment and run, logs a run into
# it, cannot delete it or its runs, cannot manage users.
check_team() {
	say "a teammate: mlstack users add bob; the real client as bob"
	masked "$WORK/mlstack" users add bob --stack "$STACK" --state-dir "$STATE" >&2 || die "mlstack users add bob failed"
	add_secrets_from_json "$STATE/$STACK/state.json" bob
	"$WORK/mlstack" env --user bob --stack "$STACK" --state-dir "$STATE" >"$WORK/env-bob.sh"
	grep -q "^export MLFLOW_TRACKING_USERNAME='bob'$" "$WORK/env-bob.sh" || die "env --user bob does not sign in as bob"
	if ! client "$WORK/env-bob.sh" teammate; then
		show "$WORK/teammate.log" 40
		die "the teammate's MLflow client failed"
	fi
	show "$WORK/teammate.log" 8
	masked "$WORK/mlstack" users list --stack "$STACK" --state-dir "$STATE" >"$WORK/users.txt" || die "mlstack users list failed"
	if ! grep -Eq '^alice +user +yes \(env file\)' "$WORK/users.txt" || ! grep -Eq '^bob +user +yes' "$WORK/users.txt" ||
		! grep -Eq '^admin +admin' "$WORK/users.txt"; then
		cat "$WORK/users.txt" >&2
		die "users list does not show admin, alice and bob"
	fi
	info "bob sees alice's experiment and logs into it; deleting it, its runs, managing users: 403"
}

check_artifact() {
	say "the artifact is in the stack bucket"
	[[ $BUCKET == "mlstack-$STACK-123456789012-$REGION-an" ]] || die "artifacts go to bucket $BUCKET, not the stack's"
	"$WORK/boot" objects -bucket "$BUCKET" -prefix artifacts/ >"$WORK/objects.txt"
	grep -qxF "$ARTIFACT_KEY" "$WORK/objects.txt" || { cat "$WORK/objects.txt" >&2; die "s3://$BUCKET/$ARTIFACT_KEY is not in moto"; }
	info "s3://$BUCKET/$ARTIFACT_KEY"
}

# expect_code WHAT WANT_REGEX CURL_ARGS...: the HTTP status must match.
expect_code() {
	local what=$1 want=$2 got
	shift 2
	got=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$@") || true # 000 and a non-zero exit without an answer
	[[ $got =~ ^($want)$ ]] || die "$what: HTTP $got, want $want"
	info "$what: HTTP $got"
}

# curl_cfg ENV_FILE OUT: a curl config (-K) that signs in with the login of
# an env file `mlstack env` printed and trusts the pinned certificate alone.
curl_cfg() {
	python3 - "$1" >"$2" <<'PY'
import shlex, sys
env = {}
for line in open(sys.argv[1]):
    k, _, v = line.removeprefix("export ").rstrip("\n").partition("=")
    env[k] = shlex.split(v)[0] if v else ""
user = env["MLFLOW_TRACKING_USERNAME"] + ":" + env["MLFLOW_TRACKING_PASSWORD"]
print('user = "' + user.replace("\\", "\\\\").replace('"', '\\"') + '"')
PY
	printf 'cacert = "%s"\n' "$CERT" >>"$2"
	chmod 0600 "$2"
}

# check_auth_hosts: writes CURL_CFG (the tracking credentials, for curl -K).
check_auth_hosts() {
	say "auth and Host checks"
	local api="api/2.0/mlflow/experiments/search?max_results=1"
	CURL_CFG=$WORK/curl-auth.cfg
	curl_cfg "$WORK/env.sh" "$CURL_CFG"
	expect_code "no credentials" 401 --cacert "$CERT" "https://$PUBLIC_DNS:5000/$api"
	expect_code "wrong password" 401 --cacert "$CERT" -u "admin:wrong-password-123" "https://$PUBLIC_DNS:5000/$api"
	expect_code "public DNS Host" 200 -K "$CURL_CFG" "https://$PUBLIC_DNS:5000/$api"
	expect_code "public IP Host" 200 -K "$CURL_CFG" --connect-to "$PUBLIC_IP:5000:127.0.0.1:5000" "https://$PUBLIC_IP:5000/$api"
	expect_code "foreign Host" '400|403' -K "$CURL_CFG" -H "Host: attacker.example:5000" "https://$PUBLIC_DNS:5000/$api"
	expect_code "foreign Host, no port" '400|403' -K "$CURL_CFG" -H "Host: attacker.example" "https://$PUBLIC_DNS:5000/$api"
	# The certificate is checked: a name it does not hold fails the handshake.
	expect_code "a name the certificate lacks" 000 -K "$CURL_CFG" --connect-to "localhost:5000:127.0.0.1:5000" "https://localhost:5000/$api"
	expect_code "plain HTTP" '000|400' "http://$PUBLIC_DNS:5000/health"
}

check_role_s3() {
	say "the server reads S3 through the instance role from IMDS"
	local body
	body=$(curl -fsS --max-time 20 -K "$CURL_CFG" "https://$PUBLIC_DNS:5000/get-artifact?path=notes.txt&run_uuid=$RUN_ID") ||
		{ diagnose; die "the server could not read the artifact back from S3"; }
	[[ $body == "mlstack boot test artifact" ]] || die "the server served '$body' for the artifact"
	local method
	method=$(in_container env -i PATH=/usr/bin:/bin AWS_DEFAULT_REGION="$REGION" /opt/mlflow/bin/python -c '
import boto3, sys
c = boto3.Session().get_credentials()
print(c.method, c.access_key == sys.argv[1])' "$ROLE_ACCESS_KEY_ID") || die "boto3 on the server found no credentials"
	[[ $method == "iam-role True" ]] || die "boto3 on the server got credentials from '$method', want the instance role from IMDS"
	info "get-artifact served the object; boto3 credentials: $method (the role's key from IMDSv2)"
}

# check_ui: the MLflow UI at the tracking URI in Debian's chromium, headless,
# the pinned certificate trusted for this run alone: login, the experiment,
# the run in its run list (the UI's POST runs/search, which MLflow refuses
# without the CORS origins), the run's metric; a screenshot is kept.
check_ui() {
	say "the MLflow UI in a real browser (chromium, headless, certificate pinned)"
	local pwfile=$WORK/ui-password out=${MLSTACK_TEST_ARTIFACTS:-$WORK}/boot-ui-$SUITE
	python3 - "$WORK/env.sh" >"$pwfile" <<'PY'
import shlex, sys
for line in open(sys.argv[1]):
    k, _, v = line.removeprefix("export ").rstrip("\n").partition("=")
    if k == "MLFLOW_TRACKING_PASSWORD":
        print(shlex.split(v)[0])
PY
	chmod 0600 "$pwfile"
	mkdir -p "$out"
	if ! "$WORK/boot" ui -uri "https://$PUBLIC_DNS:5000" -cert "$CERT" -user alice -password-file "$pwfile" \
		-resolve "$PUBLIC_DNS=127.0.0.1" -experiment mlstack-boot-test -run boot -metric loss -value 0.2 \
		-out "$out" 2> >(python3 scripts/boot/mask.py "$SECRETS" >&2); then
		die "the MLflow UI check failed in the browser"
	fi
}

run_check() {
	say "mlstack check"
	if ! masked "$WORK/mlstack" check --stack "$STACK" --state-dir "$STATE" >&2; then
		die "mlstack check failed"
	fi
}

# check_bytecode: the background job compiled the venv's bytecode after the
# server answered, so later starts read .pyc files.
check_bytecode() {
	say "bytecode compiled in the background (mlstack-bytecode)"
	local i state
	for ((i = 0; i < 240; i++)); do
		state=$(for p in ActiveState SubState Result; do in_container systemctl show -P "$p" mlstack-bytecode.service; done 2>/dev/null | tr '\n' ' ' || true)
		[[ $state == *running* || $state == *activating* ]] || break
		sleep 0.5
	done
	# RemainAfterExit keeps the finished unit, and its result, loaded.
	[[ $state == "active exited success " ]] ||
		{ diagnose; die "mlstack-bytecode.service: '$state', want 'active exited success'"; }
	in_container sh -c 'ls /opt/mlflow/lib/python3*/site-packages/mlflow/__pycache__/__init__.cpython-*.pyc' >/dev/null ||
		die "mlstack-bytecode succeeded but left no .pyc for mlflow"
	info "compiled; finished $(in_container systemctl show -P ExecMainExitTimestamp mlstack-bytecode.service)"
}

# measure_rss: the server's memory after the client run (the figure the
# limit applies to), before the browser loads the UI's pages.
measure_rss() {
	read -r SERVER_RSS SERVER_PSS SERVER_PROCS <<<"$(server_rss)"
	info "server memory after the client run: RSS $SERVER_RSS MiB (PSS $SERVER_PSS MiB)"
}

report_numbers() {
	say "numbers"
	local procs=$SERVER_PROCS ui_rss ui_pss
	read -r ui_rss ui_pss _ <<<"$(server_rss)"
	info "boot to healthy: $BOOT_TO_HEALTHY s; server memory after the client run: RSS $SERVER_RSS MiB (PSS $SERVER_PSS MiB), $procs process(es); after the UI too: RSS $ui_rss MiB (PSS $ui_pss MiB)"
	if [[ $MLFLOW_VERSION != "$LOCKED_VERSION" ]]; then
		# `mlflow server` and its uvicorn child (the drop-in).
		((procs == 2)) || die "MLflow $MLFLOW_VERSION runs as $procs processes, want mlflow server and its child"
		return 0
	fi
	# One process: uvicorn serving MLflow's app, no waiting `mlflow server` parent.
	((procs == 1)) || die "the server runs as $procs processes, want 1"
	((SERVER_RSS <= MAX_RSS)) || die "server RSS $SERVER_RSS MiB is over $MAX_RSS MiB (MLSTACK_BOOT_MAX_RSS)"
}

# scan_secrets: no secret of the stack (nor the role's keys) shows in what the
# run printed or logged: mlstack's outputs, the console, the container's
# logs and journal, the state dir's files besides those meant for secrets.
# The secrets: the stack's (state dir), the role's keys, and the private
# halves of the instance's TLS key and SSH host key, which must never leave
# it. Skipped: the files that hold secrets by design (the secret list, the
# gzip user-data as EC2 has it, scanned unpacked as user-data.txt, the IMDS
# emulator's config, the env file, curl config and password file the test
# wrote) and the rootfs outside /var/log.
scan_secrets() {
	say "secret scan of outputs and logs"
	in_container journalctl --no-pager -o short-iso >"$WORK/journal.txt" 2>&1 || true
	local k keys=()
	for k in "${PRIVATE_KEYS[@]}"; do keys+=(-private-key "$k"); done
	# What EC2 holds, unpacked: scanned like every output, no skip.
	python3 -c 'import gzip, sys; d = open(sys.argv[1], "rb").read(); sys.stdout.buffer.write(gzip.decompress(d) if d[:2] == b"\x1f\x8b" else d)' \
		"$WORK/user-data" >"$WORK/user-data.txt"
	grep -q "PRIVATE KEY" "$WORK/user-data.txt" && die "the user-data holds a private key"
	"$WORK/secretscan" -secrets "$SECRETS" -state-dir "$STATE" "${keys[@]}" \
		-skip secrets -skip user-data -skip aemm.json -skip env.sh -skip env-bob.sh -skip env-proxied.sh -skip env-replaced.sh -skip curl-auth.cfg -skip curl-bob.cfg -skip ui-password \
		-skip 'rootfs*' -skip mlstack -skip boot -skip secretscan -skip moto.log -skip secrets-but-token -skip role-tokens \
		"$WORK" "$WORK"/rootfs*/var/log || die "a secret shows in the run's outputs or logs (findings above)"
	# moto's request log, for everything but the role's session token: with
	# proxied artifacts the client downloads through presigned S3 URLs the
	# server makes, which carry the role's key id and session token in their
	# query (never its secret), as every presigned URL of temporary
	# credentials does, and moto logs each request line.
	grep -vxFf "$WORK/role-tokens" "$SECRETS" >"$WORK/secrets-but-token"
	(($(wc -l <"$WORK/secrets-but-token") == $(wc -l <"$SECRETS") - $(wc -l <"$WORK/role-tokens"))) ||
		die "the roles' session tokens are not lines of the secret list"
	"$WORK/secretscan" -secrets "$WORK/secrets-but-token" -state-dir "$STATE" "${keys[@]}" "$WORK/moto/moto.log" ||
		die "a secret shows in moto's request log (findings above)"
}

down_and_leftovers() {
	say "stop the container; mlstack down"
	stop_container
	if ! masked "$WORK/mlstack" down --stack "$STACK" --state-dir "$STATE" --yes >&2; then
		die "mlstack down failed"
	fi
	"$WORK/boot" leftovers -stack "$STACK" || die "mlstack down left resources in moto"
	[[ ! -e $STATE/$STACK ]] || die "mlstack down left local state in $STATE/$STACK"
}

# check_proxied: `mlstack up --artifacts proxied` on the live stack. moto
# cannot reboot the container, so the test restarts mlflow.service once the
# mode is in SSM, as the reboot up asks EC2 for would; up waits for the
# server to publish again and answer. Then: the key is gone from IAM and the
# state, the env file has no AWS variable, the server's journal names the
# proxied root, the client with exactly that env file logs and reads back an
# artifact through the server, the object is in the bucket under artifacts/,
# and `mlstack check` passes the proxied way.
check_proxied() {
	say "artifacts proxied: mlstack up --artifacts proxied on the live stack"
	"$WORK/mlstack" up --stack "$STACK" --allow-cidr 127.0.0.1/32 --state-dir "$STATE" --timeout 5m --user alice \
		--mlflow-version "$MLFLOW_VERSION" --artifacts proxied </dev/null >"$WORK/up-proxied.out" 2>"$WORK/up-proxied.log" &
	local up_pid=$! up_status=0 names
	PIDS+=("$up_pid")
	if ! "$MLFLOW_VENV/bin/python" - "/mlstack/$STACK/artifacts" <<'PY'; then
import sys, time, boto3
ssm = boto3.client("ssm")
for _ in range(600):
    try:
        if ssm.get_parameter(Name=sys.argv[1])["Parameter"]["Value"] == "proxied":
            sys.exit(0)
    except ssm.exceptions.ParameterNotFound:
        pass
    time.sleep(0.2)
sys.exit("the mode never reached SSM")
PY
		show "$WORK/up-proxied.log"
		die "up --artifacts proxied did not store the mode"
	fi
	in_container systemctl restart mlflow.service || { diagnose; die "restarting mlflow.service failed"; }
	wait "$up_pid" || up_status=$?
	show "$WORK/up-proxied.log" 14
	((up_status == 0)) || die "mlstack up --artifacts proxied exited $up_status"
	grep -q "rebooting instance $INSTANCE_ID so that its server serves artifacts proxied" "$WORK/up-proxied.log" ||
		die "up did not reboot the instance into the new mode"
	grep -q "mlstack-keys: artifacts proxied: default artifact root mlflow-artifacts:/" <<<"$(journal mlflow.service)" ||
		{ diagnose; die "the server did not take the proxied mode"; }
	[[ $("$MLFLOW_VENV/bin/python" -c 'import boto3; print(len(boto3.client("iam").list_access_keys(UserName="mlstack-'"$STACK"'")["AccessKeyMetadata"]))') == 0 ]] ||
		die "the stack's IAM user still has an access key"
	grep -q '"access_key_id"' "$STATE/$STACK/state.json" && die "the state still holds an access key"
	"$WORK/mlstack" env --stack "$STACK" --state-dir "$STATE" >"$WORK/env-proxied.sh"
	names=$(sed -n 's/^export \([A-Za-z0-9_]*\)=.*/\1/p' "$WORK/env-proxied.sh" | sort | tr '\n' ' ')
	[[ $names == "MLFLOW_TRACKING_PASSWORD MLFLOW_TRACKING_SERVER_CERT_PATH MLFLOW_TRACKING_URI MLFLOW_TRACKING_USERNAME " ]] ||
		die "unexpected variables from mlstack env with proxied artifacts: $names"
	if ! client "$WORK/env-proxied.sh" proxied; then
		show "$WORK/proxied.log" 40
		diagnose
		die "the MLflow client with proxied artifacts failed"
	fi
	show "$WORK/proxied.log" 4
	local uri key
	uri=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["artifact_uri"])' "$(tail -n 1 "$WORK/proxied.out")")
	key=artifacts/${uri#mlflow-artifacts:/}/proxied.txt
	"$WORK/boot" objects -bucket "$BUCKET" -prefix artifacts/ >"$WORK/objects-proxied.txt"
	grep -qxF "$key" "$WORK/objects-proxied.txt" || { cat "$WORK/objects-proxied.txt" >&2; die "s3://$BUCKET/$key is not in moto"; }
	# Through the server every artifact request is checked: bob (EDIT on
	# alice's experiment) may read alice's artifact, not delete it.
	local api="https://$PUBLIC_DNS:5000/api/2.0/mlflow-artifacts/artifacts/${key#artifacts/}"
	curl_cfg "$WORK/env-bob.sh" "$WORK/curl-bob.cfg"
	expect_code "bob reads alice's proxied artifact" 200 -K "$WORK/curl-bob.cfg" "$api"
	expect_code "bob deletes alice's proxied artifact" 403 -K "$WORK/curl-bob.cfg" -X DELETE "$api"
	masked "$WORK/mlstack" check --stack "$STACK" --state-dir "$STATE" >"$WORK/check-proxied.txt" 2>&1 ||
		{ cat "$WORK/check-proxied.txt" >&2; die "mlstack check failed with proxied artifacts"; }
	grep -q "✓ artifact upload through the server" "$WORK/check-proxied.txt" || { cat "$WORK/check-proxied.txt" >&2; die "check did not use the server for artifacts"; }
	info "proxied: no access key, no AWS variable; s3://$BUCKET/$key stored by the server; mlstack check passed"
}

# check_backup: the backup timer is on; a backup run now stores both
# databases under backups/ with its manifest last, and says what it cost.
check_backup() {
	say "backups of the tracking data (mlstack-backup.timer)"
	in_container systemctl is-enabled mlstack-backup.timer >/dev/null || die "mlstack-backup.timer is not enabled"
	in_container systemctl is-active mlstack-backup.timer >/dev/null || die "mlstack-backup.timer is not active"
	in_container systemctl start mlstack-backup.service || { diagnose; die "mlstack-backup.service failed"; }
	local line
	line=$(grep "mlstack-backup: backed up" <<<"$(journal mlstack-backup.service)" | tail -n 1 || true)
	[[ -n $line ]] || { diagnose; die "mlstack-backup.service did not back up"; }
	"$WORK/boot" objects -bucket "$BUCKET" -prefix backups/ >"$WORK/backups.txt"
	local f
	for f in manifest.json mlflow.db.gz basic_auth.db.gz; do
		grep -q "/$f\$" "$WORK/backups.txt" || { cat "$WORK/backups.txt" >&2; die "no $f of a backup in s3://$BUCKET/backups/"; }
	done
	BACKUP_COST=${line#*gzip) }
	info "$line"
}

# change USER: a change of the tracking data since the last backup (a new
# MLflow user), made before the stack's lock is held by an up.
change() {
	masked "$WORK/mlstack" users add "$1" --stack "$STACK" --state-dir "$STATE" >&2 || die "mlstack users add $1 failed"
	add_secrets_from_json "$STATE/$STACK/state.json" "$1"
	"$WORK/boot" objects -bucket "$BUCKET" -prefix backups/ >"$WORK/backups-before-stop.txt"
}

# backup_then_stop: the instance stops cleanly, as EC2's stop makes it: its
# server backs up the change after it stops. Its disk is kept aside (for
# the secret scan), its IMDS emulator and /etc/hosts line go.
backup_then_stop() {
	local before after
	before=$(grep -c '/manifest\.json$' "$WORK/backups-before-stop.txt" || true) # grep -c exits 1 on none
	T_STOP=$(now)
	stop_container
	"$WORK/boot" objects -bucket "$BUCKET" -prefix backups/ >"$WORK/backups-after-stop.txt"
	after=$(grep -c '/manifest\.json$' "$WORK/backups-after-stop.txt" || true)
	local want=1
	[[ $DB == postgres ]] && want=0 # the data is in PostgreSQL
	((after == before + want)) || { cat "$WORK/backups-after-stop.txt" >&2; die "the clean stop made $((after - before)) backups, want $want"; }
	mv "$WORK/rootfs" "$WORK/rootfs-$INSTANCE_ID"
	local i
	for i in "${!PRIVATE_KEYS[@]}"; do
		PRIVATE_KEYS[i]=${PRIVATE_KEYS[i]/#"$WORK/rootfs/"/"$WORK/rootfs-$INSTANCE_ID/"}
	done
	kill "$AEMM_PID" 2>/dev/null || true
	wait "$AEMM_PID" 2>/dev/null || true
	remove_hosts_line
}

# next_boot: the new instance boots from a fresh rootfs; its server
# restores the newest backup before it starts; up pins it and answers.
next_boot() {
	start_imds
	local first=$BOOT_TO_HEALTHY
	boot_container
	wait_healthy
	REPLACED_IN="${REPLACED_IN:+$REPLACED_IN s, }$(elapsed "$T_STOP" "$(now)")" BOOT_TO_HEALTHY=$first
	check_up_result
	if [[ $DB == postgres ]]; then
		grep "mlstack-backup: restore: nothing to do: the tracking data is in PostgreSQL" <<<"$(journal mlflow.service)" >&2 ||
			{ diagnose; die "the new server did not say its data is in PostgreSQL"; }
		return 0
	fi
	grep "mlstack-backup: restored backup" <<<"$(journal mlflow.service)" >&2 ||
		{ diagnose; die "the new server did not restore the backup"; }
}

# replace_by_up: `mlstack up --instance-type t3.micro --yes` replaces the
# live instance; when it runs another MLflow than the locked one,
# `mlstack upgrade --yes` does, and the restore upgrades the data's schema.
# The test plays EC2: once up has stopped the old instance in moto, the
# container stops cleanly; then the new instance boots. up terminates the
# old one only after the new server answered.
replace_by_up() {
	local old=$INSTANCE_ID upgrading=
	[[ $MLFLOW_VERSION == "$LOCKED_VERSION" ]] || upgrading=1
	change carol
	if [[ -n $upgrading ]]; then
		say "upgrade by mlstack upgrade --yes: MLflow $MLFLOW_VERSION -> $LOCKED_VERSION, stop (backup), launch, restore and upgrade, health, terminate"
		STATE=$WORK/state
		"$WORK/mlstack" upgrade --stack "$STACK" --state-dir "$STATE" --timeout 15m --yes </dev/null >"$WORK/up.out" 2>"$WORK/up.log" &
		UP_PID=$!
		PIDS+=("$UP_PID")
	else
		say "replacement by mlstack up --instance-type t3.micro --yes: stop (backup), launch, restore, health, terminate"
		launch_up --instance-type t3.micro --yes
	fi
	if ! "$MLFLOW_VENV/bin/python" - "$old" <<'PY'; then
import sys, time, boto3
ec2 = boto3.client("ec2")
for _ in range(600):
    r = ec2.describe_instances(InstanceIds=[sys.argv[1]])["Reservations"][0]["Instances"][0]
    if r["State"]["Name"] == "stopped":
        sys.exit(0)
    time.sleep(0.2)
sys.exit("up never stopped the old instance")
PY
		show "$WORK/up.log"
		die "up did not stop the old instance"
	fi
	backup_then_stop
	find_instance
	[[ $INSTANCE_ID != "$old" ]] || die "up launched no new instance"
	next_boot
	grep -q "terminating the old instance $old" "$WORK/up.log" || { show "$WORK/up.log"; die "up did not terminate the old instance"; }
	if [[ -n $upgrading ]]; then
		grep "mlstack-backup: backup made by MLflow $MLFLOW_VERSION, this is $LOCKED_VERSION: upgrading the schema" <<<"$(journal mlflow.service)" >&2 ||
			{ diagnose; die "the restore did not upgrade the data of MLflow $MLFLOW_VERSION"; }
		MLFLOW_VERSION=$LOCKED_VERSION # the stack runs the locked one now
	fi
	check_replaced alice bob carol
}

# replace_by_keep: `mlstack down --keep-data`, then `mlstack up`: the stack
# is made again around its kept bucket, and its new server restores.
replace_by_keep() {
	say "replacement by mlstack down --keep-data, then mlstack up"
	change dave
	backup_then_stop
	masked "$WORK/mlstack" down --keep-data --yes --stack "$STACK" --state-dir "$STATE" >"$WORK/down-keep.log" 2>&1 ||
		{ cat "$WORK/down-keep.log" >&2; die "mlstack down --keep-data failed"; }
	grep -q "kept S3 bucket $BUCKET with the artifacts" "$WORK/down-keep.log" || { cat "$WORK/down-keep.log" >&2; die "down --keep-data did not keep the bucket"; }
	if [[ $DB == postgres ]]; then
		grep -q "and RDS snapshot mlstack-$STACK-final-" "$WORK/down-keep.log" || { cat "$WORK/down-keep.log" >&2; die "down --keep-data did not keep a final snapshot"; }
		start_up --artifacts proxied
		if ! grep -q "restoring RDS database mlstack-$STACK (the class it had) from its kept snapshot" "$WORK/up.log" ||
			! grep -q "setting the master password of RDS database mlstack-$STACK" "$WORK/up.log"; then
			show "$WORK/up.log"
			die "up did not restore the kept snapshot with a new password"
		fi
	else
		start_up --artifacts proxied
		grep -q "the kept bucket holds" "$WORK/up.log" || { show "$WORK/up.log"; die "up did not see the kept backups"; }
	fi
	next_boot
	if [[ $DB == postgres ]]; then
		grep "mlstack-backup: restore: the admin's password in the database set to the stack's" <<<"$(journal mlflow.service)" >&2 ||
			{ diagnose; die "the restored database's admin did not get the stack's new password"; }
	fi
	check_replaced alice bob carol dave
}

# check_replaced USER...: the real client, as alice, finds every run, metric
# and artifact of the first server; the users are there (the admin's
# password works on the restored user database: users list goes through it).
check_replaced() {
	say "after the replacement: the MLflow client and the users"
	"$WORK/mlstack" env --stack "$STACK" --state-dir "$STATE" >"$WORK/env-replaced.sh"
	if ! client "$WORK/env-replaced.sh" replaced; then
		show "$WORK/replaced.log" 40
		diagnose
		die "the MLflow client did not find the first server's data"
	fi
	show "$WORK/replaced.log" 2
	masked "$WORK/mlstack" users list --stack "$STACK" --state-dir "$STATE" >"$WORK/users-replaced.txt" || die "mlstack users list failed"
	local u
	for u in "$@"; do
		grep -Eq "^$u +user" "$WORK/users-replaced.txt" || { cat "$WORK/users-replaced.txt" >&2; die "user $u is not on the new server"; }
	done
	info "replaced (clean stop to healthy: $REPLACED_IN s); runs, metrics, artifacts and users $* all there; backup: ${BACKUP_COST:-none: the data is in PostgreSQL}"
}

# start_rds: a private cluster of Debian's PostgreSQL on $PG_ADDR:5432
# standing in for the RDS database (SSL-only password logins, as RDS), in
# its own directory the postgres user owns; and scripts/boot/rds.py, which
# plays RDS's part for the stack's database in moto.
start_rds() {
	say "PostgreSQL standing in for RDS on $PG_ADDR:5432; scripts/boot/rds.py plays RDS"
	local bin
	bin=$(dirname "$(compgen -G '/usr/lib/postgresql/*/bin/initdb' | sort -V | tail -n 1)")
	PG_CTL=$bin/pg_ctl
	PG_DIR=$(mktemp -d /var/tmp/mlstack-boot-pg.XXXXXX)
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=rds-stand-in \
		-keyout "$PG_DIR/server.key" -out "$PG_DIR/server.crt" 2>/dev/null || die "openssl made no certificate for the cluster"
	chmod 0600 "$PG_DIR/server.key"
	chown -R postgres: "$PG_DIR"
	runuser -u postgres -- "$bin/initdb" -D "$PG_DIR/data" -U postgres -A peer >"$WORK/pg-initdb.log" 2>&1 ||
		{ show "$WORK/pg-initdb.log"; die "initdb failed"; }
	# The superuser over the socket (rds.py); the master user over SSL with its password; nobody else.
	printf 'local all postgres peer\nhostssl mlflow mlflow 127.0.0.0/8 scram-sha-256\n' >"$PG_DIR/data/pg_hba.conf"
	runuser -u postgres -- "$PG_CTL" -D "$PG_DIR/data" -l "$PG_DIR/pg.log" -w -t 60 -o "-c listen_addresses=$PG_ADDR -p 5432 -k $PG_DIR \
-c ssl=on -c ssl_cert_file=$PG_DIR/server.crt -c ssl_key_file=$PG_DIR/server.key" start >/dev/null ||
		{ cat "$PG_DIR/pg.log" >&2; die "the PostgreSQL cluster did not start (is $PG_ADDR:5432 taken?)"; }
	"$MLFLOW_VENV/bin/python" scripts/boot/rds.py "$STACK" "$PG_DIR" "$WORK/rds-host" "$SECRETS" 2>"$WORK/rds.log" &
	PIDS+=("$!")
	info "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on $PG_ADDR:5432 (SSL only)"
}

# rds_host ROOTFS: the database's endpoint, as moto gives it, resolves to
# the stand-in inside the container.
rds_host() {
	local i
	for ((i = 0; i < 100; i++)); do
		[[ -s $WORK/rds-host ]] && break
		sleep 0.2
	done
	[[ -s $WORK/rds-host ]] || { show "$WORK/rds.log"; die "the stack's RDS database has no endpoint in moto"; }
	printf '%s %s\n' "$PG_ADDR" "$(cat "$WORK/rds-host")" >>"$1/etc/hosts"
}

# pg_query SQL: one query on the stand-in's mlflow database, as the superuser.
pg_query() {
	runuser -u postgres -- psql -h "$PG_DIR" -p 5432 -d mlflow -Atq -c "$1"
}

# check_in_postgres: the runs and the users are in PostgreSQL, over SSL;
# the instance holds no database; backups have nothing to do.
check_in_postgres() {
	say "the tracking data is in PostgreSQL (the RDS stand-in), not on the instance"
	local runs users ssl
	runs=$(pg_query "SELECT count(*) FROM runs WHERE lifecycle_stage = 'active'") || die "no runs table in PostgreSQL"
	users=$(pg_query "SELECT string_agg(username, ' ' ORDER BY username) FROM users") || die "no users table in PostgreSQL"
	ssl=$(pg_query "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) WHERE usename = 'mlflow' AND ssl")
	((runs >= 1)) || die "no run in PostgreSQL"
	[[ " $users " == *" alice "* && " $users " == *" bob "* ]] || die "the MLflow users are not in PostgreSQL: $users"
	((ssl >= 1)) || die "the server's connections to PostgreSQL are not over SSL"
	in_container test ! -e /var/lib/mlflow/mlflow.db || die "the instance has a sqlite database as well"
	grep -q "mlstack-keys: database: PostgreSQL $(cat "$WORK/rds-host"):5432, database mlflow, user mlflow, SSL required" <<<"$(journal mlflow.service)" ||
		{ diagnose; die "mlflow.service did not take its database from SSM"; }
	in_container systemctl start mlstack-backup.service || { diagnose; die "mlstack-backup.service failed"; }
	grep -q "mlstack-backup: backup: nothing to do: the tracking data is in PostgreSQL" <<<"$(journal mlstack-backup.service)" ||
		{ diagnose; die "the backup did not say the data is in PostgreSQL"; }
	info "$runs run(s) and users $users in PostgreSQL, $ssl SSL connection(s) of the server; no sqlite on the instance"
}

# journal UNIT: the unit's journal in the container. Callers grep it as a
# here-string: with pipefail, `journalctl | grep -q` fails by SIGPIPE once
# the journal outgrows the pipe (MLflow 3.16's log does).
journal() {
	in_container journalctl -u "$1" --no-pager -o cat
}

# diagnose: what the container says, masked.
diagnose() {
	info "diagnostics:"
	show "$WORK/console.log" 30
	if leader >/dev/null; then
		in_container sh -c 'tail -n 40 /var/log/cloud-init-output.log; systemctl --no-pager status mlflow.service; journalctl --no-pager -n 40 -u mlflow.service' 2>&1 |
			python3 scripts/boot/mask.py "$SECRETS" >&2 || true
	fi
}

# bench_install N: N cold installs of the lock each with uv and with pip,
# alternating, each in a fresh rootfs copy; install and install-to-healthy
# seconds.
bench_install() {
	local runs=${1:-3} port i mode line rootfs
	need_root_tools
	rootfs=$(ensure_rootfs)
	WORK=$(mktemp -d /var/tmp/mlstack-bench.XXXXXX)
	trap cleanup EXIT
	trap 'exit 130' INT TERM
	say "install-to-healthy of templates/mlflow-lock.txt (MLflow $(sed -n 's/^#@ mlflow //p' templates/mlflow-lock.txt)) on $SUITE, $runs cold runs each, $(nproc) cores"
	for ((i = 1; i <= runs; i++)); do
		for mode in uv pip; do
			rm -rf "$WORK/rootfs"
			fresh_rootfs "$rootfs" "$WORK/rootfs"
			trust_host_tls "$WORK/rootfs"
			# Not under /tmp: nspawn mounts a tmpfs there.
			mkdir -p "$WORK/rootfs/var/lib/mlstack-bench"
			cp templates/mlflow-lock.txt templates/mlstack_mlflow.py "$WORK/rootfs/var/lib/mlstack-bench/"
			port=$(free_port)
			if line=$(systemd-nspawn -q --register=no --keep-unit -D "$WORK/rootfs" --pipe \
				sh -s "$mode" /var/lib/mlstack-bench "$port" <scripts/boot/bench-install.sh 2>"$WORK/bench.err"); then
				echo "run $i: $line"
			else
				echo "run $i: $mode FAILED"
				tail -n 20 "$WORK/bench.err" >&2
			fi
		done
	done
}

case ${1:-test} in
test) boot_test ;;
bench-install) bench_install "${2:-3}" ;;
*)
	echo "usage: $0 [test | bench-install [RUNS]]" >&2
	exit 2
	;;
esac
