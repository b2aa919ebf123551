#!/usr/bin/env bash
# Boot test: proves that the exact user-data `mlstack up` sends turns a
# fresh Debian-family machine into a working tracking server.
#
#   scripts/boot-test.sh                     the test (root; CI runs it via scripts/test.sh)
#   MLSTACK_BOOT_SUITE=trixie scripts/boot-test.sh   the same on Debian trixie
#   scripts/boot-test.sh bench-install [N]   uv vs pip, installing the lock cold, N runs each
#
# This script builds the Debian rootfs the test boots (debootstrap:
# systemd, cloud-init, curl; no python3-venv, no apt lists, as on the
# Ubuntu image, where neither is there at first boot), cached in
# $MLSTACK_BOOT_CACHE, and runs the test itself, which is Go:
# scripts/boot/boot_test.go (go test -tags boottest), one subtest per phase
# (up, client, team, ui, proxied, backup or postgres, replace-by-up,
# replace-by-keep-data, secrets, down, leftovers); its header says what
# each proves. Everything it sets up is undone when it ends, on failure too.
#
# Stand-ins: the instance runs Ubuntu 24.04 (Python 3.12, cloud-init 24+); the
# container runs Debian bookworm (Python 3.11, cloud-init 22.4) or, with
# MLSTACK_BOOT_SUITE=trixie, Debian trixie (Python 3.13, cloud-init 25.1).
# Swap cannot be enabled in a container: cloud-init 22.4 warns about it,
# 25.1 counts it as its one error, which is all the test lets pass.
#
# Environment (the test's own: see scripts/boot/boot_test.go):
#   MLSTACK_BOOT_CACHE  cache of rootfs and tools (default /var/cache/mlstack-boot)
#   MLSTACK_BOOT_SUITE  the Debian release to boot: bookworm (default) or trixie
#   MLSTACK_BOOT_DB, MLSTACK_BOOT_MLFLOW_VERSION, MLSTACK_BOOT_MAX_RSS,
#   MLSTACK_BOOT_HEALTH_TIMEOUT, MLSTACK_BOOT_KEEP  passed to the test
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

CACHE=${MLSTACK_BOOT_CACHE:-/var/cache/mlstack-boot}
SUITE=${MLSTACK_BOOT_SUITE:-bookworm}
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

# trust_host_tls ROOTFS: this machine's TLS trust store (the sandbox's
# egress proxy's CA) for pip and uv; the Go test does the same.
trust_host_tls() {
	install -m 0644 /etc/ssl/certs/ca-certificates.crt "$1/etc/ssl/certs/ca-certificates.crt"
	printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' >"$1/etc/pip.conf"
	mkdir -p "$1/etc/uv"
	printf 'native-tls = true\n' >"$1/etc/uv/uv.toml"
}

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ---------------------------------------------------------------- run

need_root_tools() {
	((EUID == 0)) || die "must run as root (debootstrap, systemd-nspawn, /etc/hosts, an address on lo, port 80)"
	local missing=() t
	for t in debootstrap systemd-nspawn flock go sha256sum shellcheck; do
		command -v "$t" >/dev/null || missing+=("$t")
	done
	((${#missing[@]} == 0)) || die "missing tools: ${missing[*]} (Debian: apt-get install debootstrap systemd-container util-linux shellcheck)"
}

# boot_test: the rootfs, then the Go test with it (-v: the numbers it
# logs, boot to healthy and RSS, are what docs/BENCHMARKS.md cites).
boot_test() {
	need_root_tools
	# The helpers that .ci/run's `shellcheck scripts/*.sh` does not reach.
	shellcheck scripts/boot/*.sh || die "shellcheck: scripts/boot/*.sh"
	local rootfs
	rootfs=$(ensure_rootfs)
	say "go test -tags boottest -run '^TestBoot\$' ./scripts/boot ($SUITE, ${MLSTACK_BOOT_DB:-sqlite}, MLflow ${MLSTACK_BOOT_MLFLOW_VERSION:-locked})"
	MLSTACK_BOOT_ROOTFS=$rootfs MLSTACK_BOOT_SUITE=$SUITE MLSTACK_BOOT_CACHE=$CACHE \
		go test -tags boottest -count=1 -timeout 90m -v -run '^TestBoot$' ./scripts/boot
}

# bench_install N: N cold installs of the lock each with uv and with pip,
# alternating, each in a fresh rootfs copy; install and install-to-healthy
# seconds.
bench_install() {
	local runs=${1:-3} port i mode line rootfs
	need_root_tools
	rootfs=$(ensure_rootfs)
	WORK=$(mktemp -d /var/tmp/mlstack-bench.XXXXXX)
	trap 'rm -rf "$WORK"' EXIT
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
