#!/usr/bin/env bash
# Try mlstack without an AWS account: runs up, env, status and down against a
# local AWS emulator (moto), then stops it. Nothing leaves this machine.
#   scripts/demo.sh [STACK]   (default: demo)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
STACK=${1:-demo}
export MLSTACK_MOTO_DIR=$PWD/.cache/demo-moto
state=$(mktemp -d)
trap 'scripts/moto.sh stop >/dev/null 2>&1 || true; rm -rf "$state"' EXIT
eval "$(scripts/moto.sh start)"
go build -o "$state/mlstack" ./cmd/mlstack
ml() {
	echo "\$ mlstack $*" >&2
	"$state/mlstack" "$@" --stack "$STACK" --state-dir "$state"
}

# The emulator cannot boot a server, so up does not wait for /health.
ml up --allow-cidr 198.51.100.7/32 --no-wait
echo "\$ mlstack env  (secrets masked here)" >&2
"$state/mlstack" env --stack "$STACK" --state-dir "$state" |
	sed -E "s/^(export (AWS_SECRET_ACCESS_KEY|MLFLOW_TRACKING_PASSWORD)=).*/\1'…'/"
ml status
ml down --yes
