#!/usr/bin/env bash
# Opt-in live test: up → check → down → leak check against whatever AWS
# account the caller's credentials name, as terraform-provider-aws runs its
# acceptance tests. A t2.micro (or t3.micro) runs for about ten minutes:
# cents, but not free.
#
#   MLSTACK_LIVE_TEST=yes-i-accept-aws-costs scripts/live-test.sh [--region R] [--profile P] [--instance-type T]
#
# It refuses to start without that variable, makes a stack named live-<random>
# tagged to expire in 2 hours (so a sweep removes it should everything here
# fail), and removes it again on any exit: success, failure or Ctrl-C.
#
# CI runs the same script against the emulator so it cannot rot:
#   MLSTACK_LIVE_TEST=emulator scripts/live-test.sh      (AWS_ENDPOINT_URL set)
# There no server boots, so it runs up --no-wait and skips check.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '\n== live-test: %s\n' "$*" >&2; }
die() {
	printf 'live-test: %s\n' "$*" >&2
	exit 2
}

mode=${MLSTACK_LIVE_TEST:-}
case $mode in
yes-i-accept-aws-costs)
	[[ -z ${AWS_ENDPOINT_URL:-} ]] || die "AWS_ENDPOINT_URL is set: for the emulator, use MLSTACK_LIVE_TEST=emulator"
	;;
emulator)
	[[ -n ${AWS_ENDPOINT_URL:-} ]] || die "MLSTACK_LIVE_TEST=emulator needs AWS_ENDPOINT_URL (eval \"\$(scripts/moto.sh start)\")"
	;;
*)
	die "refusing to run: this creates billed AWS resources in the account your credentials name. Set MLSTACK_LIVE_TEST=yes-i-accept-aws-costs (or =emulator with AWS_ENDPOINT_URL) to run it"
	;;
esac

aws_flags=() # for every command that talks to AWS
up_flags=()
while (($#)); do
	case $1 in
	--region | --profile) aws_flags+=("$1" "${2:?$1 needs a value}") ;;
	--instance-type) up_flags+=("$1" "${2:?$1 needs a value}") ;;
	*) die "unknown option $1 (use --region R, --profile P, --instance-type T)" ;;
	esac
	shift 2
done

WORK=$(mktemp -d)
STACK=live-$(od -An -N4 -tx4 /dev/urandom | tr -d ' \n')
STATE=$WORK/state
flags=(--stack "$STACK" --state-dir "$STATE" "${aws_flags[@]}")
down_done=

cleanup() {
	local status=$?
	set +e
	if [[ -z $down_done && -x $WORK/mlstack ]]; then
		say "cleanup: mlstack down ${flags[*]}"
		"$WORK/mlstack" down --yes "${flags[@]}" || status=1
		leak_check || status=1
	fi
	rm -rf "$WORK"
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# leak_check lists, by name and tag, whatever of the stack is left.
leak_check() {
	if ! AWS_REGION=$(region) go run ./scripts/boot leftovers -stack "$STACK"; then
		# The state dir goes with this run; down finds the stack by tag and name.
		printf 'live-test: LEFT BEHIND in the account above: remove it with: go run ./cmd/mlstack down --yes --stack %s %s\n' "$STACK" "${aws_flags[*]}" >&2
		return 1
	fi
}

# region is the --region given, else the AWS default chain's.
region() {
	local prev='' a
	for a in "${aws_flags[@]}"; do
		if [[ $prev == --region ]]; then
			echo "$a"
			return
		fi
		prev=$a
	done
	echo "${AWS_REGION:-${AWS_DEFAULT_REGION:-}}"
}

say "stack $STACK ($mode)"
go build -o "$WORK/mlstack" ./cmd/mlstack

up=(up --ttl 2h "${flags[@]}" "${up_flags[@]}")
if [[ $mode == emulator ]]; then
	up+=(--no-wait --allow-cidr 127.0.0.1/32)
fi
say "mlstack ${up[*]}"
"$WORK/mlstack" "${up[@]}"

if [[ $mode == emulator ]]; then
	say "check skipped: no server boots in the emulator (scripts/boot-test.sh boots one)"
	"$WORK/mlstack" status "${flags[@]}"
else
	say "mlstack check"
	"$WORK/mlstack" check --stack "$STACK" --state-dir "$STATE"
fi

say "mlstack down"
"$WORK/mlstack" down --yes "${flags[@]}"
down_done=1
say "leak check"
leak_check
say "PASSED ($mode): stack $STACK came up and left nothing"
