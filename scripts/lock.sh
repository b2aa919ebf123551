#!/usr/bin/env bash
# Regenerates templates/mlflow-lock.txt, the lock of everything the instance
# installs: MLflow (cloudinit.DefaultMLflowVersion) with the auth extra,
# boto3 and psycopg2-binary (PostgreSQL's driver, for --db postgres; every
# stack installs it: one lock), every transitive dependency, and the
# installers themselves (uv, and pip as the fallback), each pinned by
# version and sha256.
#
#   scripts/lock.sh --check    check the lock against what it promises,
#                              without resolving (scripts/lock/verify.py):
#                              MLflow version, targets and installers as set
#                              here, every hash one PyPI serves for that
#                              version and target, and the lines exactly the
#                              closure of the roots over the pinned wheels'
#                              own metadata. Same answer on any day.
#   scripts/lock.sh --refresh  resolve anew against PyPI as of now, write the
#                              lock, then check it (what a scheduled job runs:
#                              examples/github-actions/refresh-lock.yml)
#
# How: `uv pip compile --format pylock.toml --only-binary :all:` once per
# target, i.e. per CPython (3.11: the Debian bookworm stand-in; 3.12: Ubuntu
# 24.04, the instance; 3.13: the Debian trixie stand-in) and architecture
# (x86_64, aarch64), for manylinux wheels up to glibc 2.36 (bookworm's; noble
# has 2.39, trixie 2.41), with --exclude-newer so the same date resolves the
# same way again where the index serves upload times (the index these machines
# use does not, so a second resolution moves with PyPI: hence --check does not
# resolve). scripts/lock/merge.py then keeps one wheel per package per
# target and writes one requirements file with environment markers, which
# `uv pip install --require-hashes -r` and pip read as they are.
# Needs python3 (3.11+) with venv and pip, and PyPI.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

UV_VERSION=0.13.9
PIP_VERSION=26.3
PYTHONS=(3.11 3.12 3.13)
ARCHS=(x86_64 aarch64)
GLIBC=2_36
LOCK=templates/mlflow-lock.txt
TOOLS=.cache/lock-tools

say() { printf 'lock.sh: %s\n' "$*" >&2; }

mlflow=$(sed -n 's/^const DefaultMLflowVersion = "\([0-9.]*\)".*/\1/p' cloudinit/cloudinit.go)
[[ -n $mlflow ]] || { say "cannot read DefaultMLflowVersion from cloudinit/cloudinit.go"; exit 1; }

ROOTS=("mlflow[auth]==$mlflow" boto3 psycopg2-binary)

case ${1:-} in
--check | --refresh) ;;
*)
	echo "usage: $0 --check | --refresh" >&2
	exit 2
	;;
esac

# The tools (packaging for the check, uv for --refresh): pinned by sha256,
# in a venv of their own.
stamp="$TOOLS/.tools-$(sha256sum scripts/lock/tools.txt | cut -c1-16)"
if [[ ! -e $stamp ]]; then
	say "installing scripts/lock/tools.txt into $TOOLS"
	rm -rf "$TOOLS"
	python3 -m venv "$TOOLS" >&2
	"$TOOLS/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
		--require-hashes --only-binary :all: -r scripts/lock/tools.txt >&2
	touch "$stamp"
fi

# check: verify.py with lock.sh's inputs, and its mutation self-test.
check() {
	local args=(--lock "$LOCK" --mlflow "$mlflow" --uv "$UV_VERSION" --pip "$PIP_VERSION" --glibc "$GLIBC")
	for py in "${PYTHONS[@]}"; do args+=(--python "$py"); done
	for arch in "${ARCHS[@]}"; do args+=(--arch "$arch"); done
	"$TOOLS/bin/python" scripts/lock/verify.py "${args[@]}" --self-test "${ROOTS[@]}"
}

if [[ $1 == --check ]]; then
	check
	exit
fi

date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
uv=$TOOLS/bin/uv

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '%s\n' "${ROOTS[@]}" >"$work/mlflow.in"
printf 'uv==%s\n' "$UV_VERSION" >"$work/uv.in"
printf 'pip==%s\n' "$PIP_VERSION" >"$work/pip.in"

# compile IN PYTHON ARCH OUT: one target's pylock.toml.
compile() {
	"$uv" pip compile --quiet --no-header --format pylock.toml --only-binary :all: \
		--exclude-newer "$date" --python-version "$2" --python-platform "$3-manylinux_$GLIBC" \
		-o "$4" "$1"
}

say "resolving mlflow[auth]==$mlflow, boto3 and psycopg2-binary as of $date for CPython ${PYTHONS[*]} on ${ARCHS[*]}"
for py in "${PYTHONS[@]}"; do
	for arch in "${ARCHS[@]}"; do
		compile "$work/mlflow.in" "$py" "$arch" "$work/pylock.cp${py/./}-$arch.toml" &
	done
done
for arch in "${ARCHS[@]}"; do
	compile "$work/uv.in" 3.12 "$arch" "$work/pylock.uv-$arch.toml" &
done
compile "$work/pip.in" 3.12 x86_64 "$work/pylock.pip-any.toml" &
failed=0
for job in $(jobs -p); do
	wait "$job" || failed=1
done
((failed == 0)) || { say "uv pip compile failed"; exit 1; }

python3 scripts/lock/merge.py --mlflow "$mlflow" --date "$date" "$work" >"$work/lock.txt"

mv "$work/lock.txt" "$LOCK"

# The test tools' locks: moto, and the older MLflow whose data the tests
# upgrade. Their install by sha256 (--require-hashes) is their check.
# test_lock FILE ROOT...: every file of each pinned version, for CPython 3.11.
test_lock() {
	printf '%s\n' "${@:2}" >"$work/test.in"
	"$uv" pip compile --quiet --universal --generate-hashes --exclude-newer "$date" \
		--python-version 3.11 --custom-compile-command "scripts/lock.sh --refresh" \
		-o "scripts/testdata/$1" "$work/test.in"
}
test_lock moto-lock.txt "moto[server]==$(sed -n 's/^MOTO_VERSION=//p' scripts/moto.sh)"
test_lock mlflow-3.16.1-lock.txt "mlflow[auth]==3.16.1" boto3 psycopg2-binary
say "wrote scripts/testdata/moto-lock.txt and mlflow-3.16.1-lock.txt"
say "wrote $LOCK: $(grep -c '^[a-z]' "$LOCK") wheels for $(grep '^#@ targets' "$LOCK" | cut -d' ' -f3-)"
check
