# shellcheck shell=bash
# Sourced by scripts/moto.sh and scripts/mlflow-venv.sh.
#
# venv_install VENV PIP-ARGS...: installs into VENV with uv, the installer
# the instance uses (templates/mlflow-lock.txt pins its wheel by sha256),
# or with pip when uv cannot. uv fetches in parallel and compiles the
# bytecode on every core: the lock's 90 wheels take about 20 s where pip
# took 70, most of it pip compiling on one core. uv itself comes from
# PyPI through pip, checked against the lock's hash.
venv_install() {
	local venv=$1 uv_line sha version
	shift
	if [[ ! -x $venv/bin/uv ]]; then
		uv_line=$(awk -v key="#@ uv $(uname -m) " 'index($0, key) == 1 { print; exit }' \
			"$(dirname "${BASH_SOURCE[0]}")/../templates/mlflow-lock.txt")
		sha=$(cut -d' ' -f4 <<<"$uv_line")
		version=$(sed -n 's|.*/uv-\([0-9.]*\)-.*|\1|p' <<<"$uv_line")
		if [[ -n $sha && -n $version ]]; then
			"$venv/bin/python" -m pip install --disable-pip-version-check --quiet --no-deps \
				--require-hashes -r /dev/stdin <<<"uv==$version --hash=sha256:$sha" >&2 || true
		fi
	fi
	if [[ -x $venv/bin/uv ]] && UV_HTTP_TIMEOUT=60 "$venv/bin/uv" pip install --quiet --python "$venv/bin/python" \
		--compile-bytecode "$@" >&2; then
		return 0
	fi
	echo "venv-install: uv could not install into $venv; pip does" >&2
	"$venv/bin/python" -m pip install --disable-pip-version-check --quiet "$@" >&2
}
