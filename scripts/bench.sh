#!/usr/bin/env bash
# Benchmark: AWS API calls and seconds of `up` (new stack), re-`up`
# (complete stack) and `down` against a local moto server. Not a test: it
# reports numbers and asserts nothing about speed.
#   scripts/bench.sh [RUNS]    (default 3)
# Then: sweeping 10 stacks (down --all) against 10 sequential downs.
# Runs its own moto server (in .cache/bench-moto), stopped on exit.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
RUNS=${1:-3}
export MLSTACK_MOTO_DIR=$PWD/.cache/bench-moto
trap 'scripts/moto.sh stop >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
work=$(mktemp -d)
eval "$(scripts/moto.sh start)"
go build -o "$work/mlstack" ./cmd/mlstack

# measure LABEL ARGS...: runs mlstack, prints "LABEL seconds calls mutating".
measure() {
	local label=$1 start end calls
	shift
	start=$(date +%s.%N)
	"$work/mlstack" "$@" --api-calls >/dev/null 2>"$work/err" || {
		echo "bench: mlstack $* failed:" >&2
		grep -v '^api-calls' "$work/err" >&2
		exit 1
	}
	end=$(date +%s.%N)
	calls=$(sed -n 's/^api-calls: \([0-9]*\) calls (\([0-9]*\) mutating).*/\1 \2/p' "$work/err")
	printf '%s %s %s\n' "$label" "$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }')" "$calls"
}

results=$work/results
for ((i = 1; i <= RUNS; i++)); do
	flags=(--stack "bench$i" --state-dir "$work/state")
	{
		measure up up "${flags[@]}" --allow-cidr 198.51.100.7/32 --no-wait
		measure re-up up "${flags[@]}" --allow-cidr 198.51.100.7/32 --no-wait
		measure down down "${flags[@]}" --yes
	} >>"$results"
done

echo "mlstack against moto, $RUNS run(s) each ($(nproc) cores); seconds are wall time of the whole command"
echo
echo "| step | API calls | mutating | seconds (min / median / max) |"
echo "|---|---|---|---|"
for step in up re-up down; do
	awk -v s="$step" '$1 == s { print $2, $3, $4 }' "$results" | sort -n | awk -v s="$step" '
		{ t[NR] = $1; c = $2; m = $3 }
		END { printf "| %s | %s | %s | %.2f / %.2f / %.2f |\n", s, c, m, t[1], t[int((NR + 1) / 2)], t[NR] }'
done

# Ten stacks removed one `down` at a time, then ten removed by one sweep.
make_ten() {
	local i
	for ((i = 1; i <= 10; i++)); do
		"$work/mlstack" up --stack "s$i" --state-dir "$work/state" --allow-cidr 198.51.100.7/32 --no-wait >/dev/null 2>&1
	done
}
make_ten
seq_start=$(date +%s.%N)
seq_calls=0
for ((i = 1; i <= 10; i++)); do
	line=$(measure down down --stack "s$i" --state-dir "$work/state" --yes)
	seq_calls=$((seq_calls + $(echo "$line" | awk '{ print $3 }')))
done
seq_end=$(date +%s.%N)
make_ten
sweep=$(measure sweep down --all --yes --state-dir "$work/state")
echo
echo "| removing 10 stacks | API calls | seconds |"
echo "|---|---|---|"
awk -v a="$seq_start" -v b="$seq_end" -v c="$seq_calls" 'BEGIN { printf "| 10 sequential downs | %d | %.2f |\n", c, b - a }'
echo "$sweep" | awk '{ printf "| one sweep (down --all, 4 at a time) | %d | %.2f |\n", $3, $2 }'
