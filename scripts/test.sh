#!/usr/bin/env bash
# The one test command: starts a local moto server (stopped again on exit),
# then gofmt, go mod tidy -diff, actionlint, go vet, staticcheck and go test
# against it, then the live test against it; the boot tests (bookworm;
# trixie with PostgreSQL and an upgrade) and the lock check run meanwhile,
# beside them, and their output follows. Extra arguments go to go test, e.g.
# scripts/test.sh -run TestUp -v
#
# A moto already started with `scripts/moto.sh start` is reused and left
# running. Exit status: go test's when it fails, else a boot test's, else 1
# if gofmt, tidy, vet, staticcheck, the live test or the lock check
# complained, else 0.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '\n== test.sh [%dm%02ds]: %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*" >&2; }

if scripts/moto.sh status >/dev/null 2>&1; then
	say "reusing the running moto server"
else
	stop_moto=1
	trap 'scripts/moto.sh stop' EXIT
fi
# The MLflow venvs install while moto starts (each is mostly pip
# waiting on downloads): the lock's, with psycopg2, for the server tests,
# and an older MLflow, whose data the backup tests restore and upgrade.
venvs=$(mktemp -d)
say "moto, and the MLflow venvs (the lock's; 3.16.1) at the same time"
scripts/mlflow-venv.sh >"$venvs/new" &
new_venv=$!
MLSTACK_MLFLOW_VERSION=3.16.1 MLSTACK_MLFLOW_VENV="$PWD/.cache/mlflow-venv-3.16.1" scripts/mlflow-venv.sh >"$venvs/old" &
old_venv=$!
# Assign first: eval "$(cmd)" would swallow a failed start.
moto_env=$(scripts/moto.sh start)
eval "$moto_env"
say "AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL (MLSTACK_TEST_MOTO_URL), region $AWS_DEFAULT_REGION"
wait "$new_venv" || { echo "test.sh: the MLflow venv failed to install" >&2; exit 1; }
wait "$old_venv" || { echo "test.sh: the MLflow 3.16.1 venv failed to install" >&2; exit 1; }
MLSTACK_TEST_MLFLOW_VENV=$(cat "$venvs/new")
MLSTACK_TEST_MLFLOW_OLD_VENV=$(cat "$venvs/old")
export MLSTACK_TEST_MLFLOW_VENV MLSTACK_TEST_MLFLOW_OLD_VENV
rm -rf "$venvs"
say "MLflow venvs ready: $MLSTACK_TEST_MLFLOW_VENV, $MLSTACK_TEST_MLFLOW_OLD_VENV"

failed=0

# The boot tests (bookworm; trixie with PostgreSQL, from MLflow 3.16.1
# upgraded) run beside go test, one after the other:
# they wait on containers, pip and the network more than they use the
# CPU, and share nothing with go test (a private moto, their own ports;
# moto.sh's AWS_EC2_METADATA_DISABLED keeps go test's SDK off their
# metadata address). Their output is kept and printed after go test's.
# CI always runs them and the lock check; locally a focused run (go test
# arguments) or MLSTACK_SKIP_BOOT=1 skips both, and says so.
boot_chain() {
	local status=0 lock_pid
	# The lock checked against what it promises (no resolution: the same
	# answer on any day): mostly waiting on PyPI's index, so beside the rest.
	scripts/lock.sh --check >"$boot_dir/lock.log" 2>&1 &
	lock_pid=$!
	# Two runs cover every suite, engine and MLflow version, each run
	# every phase: bookworm with sqlite and the locked MLflow; trixie
	# with the tracking data in PostgreSQL (Debian's playing the RDS
	# database) from MLflow 3.16.1 (the release before the locked one,
	# by version pins), which `mlstack upgrade` replaces, upgrading the
	# schema of the data RDS keeps: the riskiest pair, an upgrade of
	# data no backup restores.
	say "boot test on bookworm: MLSTACK_BOOT_SUITE=bookworm scripts/boot-test.sh"
	MLSTACK_BOOT_SUITE=bookworm scripts/boot-test.sh || status=$?
	say "boot test on trixie, PostgreSQL, from MLflow 3.16.1 upgraded: MLSTACK_BOOT_SUITE=trixie MLSTACK_BOOT_DB=postgres MLSTACK_BOOT_MLFLOW_VERSION=3.16.1 scripts/boot-test.sh"
	MLSTACK_BOOT_SUITE=trixie MLSTACK_BOOT_DB=postgres MLSTACK_BOOT_MLFLOW_VERSION=3.16.1 scripts/boot-test.sh || status=$?
	local lock_status=0
	wait "$lock_pid" || lock_status=$?
	echo "$lock_status" >"$boot_dir/lock-status"
	echo "$status" >"$boot_dir/status"
}

boot_pid=
if [[ -z ${CI:-} && (${MLSTACK_SKIP_BOOT:-} == 1 || $# -gt 0) ]]; then
	say "SKIPPED the lock check and the boot tests (go test arguments or MLSTACK_SKIP_BOOT=1; CI never skips them)"
else
	boot_dir=$(mktemp -d)
	trap 'if [[ -n $boot_pid ]]; then kill -- -"$boot_pid" 2>/dev/null; fi; rm -rf "$boot_dir"; if [[ -n ${stop_moto:-} ]]; then scripts/moto.sh stop; fi' EXIT
	say "the boot tests start beside go test (their output follows go test's)"
	set -m # their own process group, so that an interrupted run stops them all
	boot_chain >"$boot_dir/log" 2>&1 &
	boot_pid=$!
	set +m
fi

say "gofmt -l"
# find rather than `gofmt -l .`: skip .cache (the venv) and .git.
unformatted=$(find . \( -path ./.cache -o -path ./.git \) -prune -o -name '*.go' -print0 |
	xargs -0 -r gofmt -l)
if [[ -n $unformatted ]]; then
	printf 'not gofmt-formatted (run gofmt -w):\n%s\n' "$unformatted" >&2
	failed=1
fi

say "go mod tidy -diff"
# go.mod and go.sum as go mod tidy would write them: a direct use marked
# indirect, or a stale requirement, fails here rather than in a review.
if ! go mod tidy -diff >&2; then
	printf 'go.mod or go.sum is not tidy (run go mod tidy)\n' >&2
	failed=1
fi

say "actionlint examples/github-actions (the example workflows)"
go run github.com/rhysd/actionlint/cmd/actionlint@v1.7.12 examples/github-actions/*.yml || failed=1

say "go vet ./..."
go vet ./... || failed=1

# Pinned: 2026.2.2 (v0.8.2) knows Go 1.26, go.mod's language version; a
# newer Go in go.mod needs a newer staticcheck.
say "staticcheck ./..."
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./... || failed=1

# -timeout: the CLI package against moto took about 10 minutes under
# -race on 2 cores, go test's default limit per package, when its tests
# ran one after another (MLSTACK_TEST_SHARDS=1); a test that hangs still
# gets the whole limit.
say "go test -race -count=1 -timeout 30m ./... $*"
status=0
go test -race -count=1 -timeout 30m ./... "$@" || status=$?

# The opt-in live test (scripts/live-test.sh), run against the emulator so
# that it cannot rot: same script, up --no-wait, no check, leak check.
say "live test against the emulator: scripts/live-test.sh"
if [[ $# -eq 0 || -n ${CI:-} ]]; then
	MLSTACK_LIVE_TEST=emulator scripts/live-test.sh || failed=1
else
	say "SKIPPED the live test (go test arguments; CI never skips it)"
fi

boot_status=0
if [[ -n $boot_pid ]]; then
	say "waiting for the boot tests and the lock check"
	wait "$boot_pid" || true
	boot_pid=
	say "lock check: scripts/lock.sh --check (it ran beside the boot tests)"
	cat "$boot_dir/lock.log" >&2
	read -r lock_status <"$boot_dir/lock-status" 2>/dev/null || lock_status=1
	((lock_status == 0)) || failed=1
	cat "$boot_dir/log" >&2
	read -r boot_status <"$boot_dir/status" 2>/dev/null || boot_status=1
fi

if ((status != 0)); then
	say "FAILED: go test exited $status"
	exit "$status"
fi
if ((boot_status != 0)); then
	say "FAILED: the boot test exited $boot_status"
	exit "$boot_status"
fi
if ((failed)); then
	say "FAILED: gofmt, go mod tidy, go vet, staticcheck, the live test or the lock check reported problems (go test passed)"
	exit 1
fi
say "all passed"
