#!/usr/bin/env bash
# Regenerates templates/mlflow-lock.txt, the lock of everything the instance
# installs: MLflow (cloudinit.DefaultMLflowVersion) with the auth extra,
# boto3 and psycopg2-binary (PostgreSQL's driver, for --db postgres; every
# stack installs it: one lock), every transitive dependency, and the
# installers themselves (uv, and pip as the fallback), each pinned by
# version and sha256.
#
#   scripts/lock.sh           resolve anew against PyPI as of now
#   scripts/lock.sh --check   resolve again as of the date recorded in the
#                             lock and fail if the result differs
#
# How: `uv pip compile --format pylock.toml --only-binary :all:` once per
# target, i.e. per CPython (3.11: the Debian bookworm stand-in; 3.12: Ubuntu
# 24.04, the instance; 3.13: the Debian trixie stand-in) and architecture
# (x86_64, aarch64), for manylinux wheels up to glibc 2.36 (bookworm's; noble
# has 2.39, trixie 2.41), with --exclude-newer so the same date resolves the
# same way again. scripts/lock/merge.py then keeps one wheel per package per
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

check=
case ${1:-} in
'') date=$(date -u +%Y-%m-%dT%H:%M:%SZ) ;;
--check)
	check=1
	date=$(sed -n 's/^#@ exclude-newer \(.*\)$/\1/p' "$LOCK")
	[[ -n $date ]] || { say "$LOCK records no exclude-newer date"; exit 1; }
	;;
*)
	echo "usage: $0 [--check]" >&2
	exit 2
	;;
esac

# The uv that resolves: the pinned version, in a venv of its own.
if [[ $("$TOOLS/bin/uv" --version 2>/dev/null) != "uv $UV_VERSION"* ]]; then
	say "installing uv $UV_VERSION into $TOOLS"
	python3 -m venv "$TOOLS" >&2
	"$TOOLS/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION" >&2
fi
uv=$TOOLS/bin/uv

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf 'mlflow[auth]==%s\nboto3\npsycopg2-binary\n' "$mlflow" >"$work/mlflow.in"
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

if [[ -n $check ]]; then
	if ! diff -u "$LOCK" "$work/lock.txt" >&2; then
		say "FAILED: $LOCK is not what scripts/lock.sh resolves as of $date (diff above)"
		exit 1
	fi
	say "$LOCK is what PyPI resolves as of $date"
	exit 0
fi
mv "$work/lock.txt" "$LOCK"
say "wrote $LOCK: $(grep -c '^[a-z]' "$LOCK") wheels for $(grep '^#@ targets' "$LOCK" | cut -d' ' -f3-)"
