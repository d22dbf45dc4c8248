#!/usr/bin/env bash
# Installs the peers kiln is compared with, from Debian, when they are
# missing: NumPy and OpenBLAS (SGEMM) and PyTorch 1.13 CPU (training), plus
# the Fashion-MNIST dataset. Idempotent: installs nothing when all are there.
# Needs root and apt-get for a first install (a failed install refreshes the
# package lists and retries once); prints what to install otherwise.
set -euo pipefail

PKGS=(python3-numpy libopenblas0 libopenblas-dev python3-torch)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=scripts/lib-apt.sh
source "$ROOT/scripts/lib-apt.sh"

missing=()
for p in "${PKGS[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep "install ok installed" >/dev/null; then
		missing+=("$p")
	fi
done

if ((${#missing[@]})); then
	if [[ "$(id -u)" -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
		echo "missing peers: ${missing[*]}; install them as root: apt-get install -y ${missing[*]}" >&2
		exit 1
	fi
	echo "installing peers: ${missing[*]}"
	kiln_apt_install -y --no-install-recommends "${missing[@]}"
else
	echo "peers already installed: ${PKGS[*]}"
fi

bash "$ROOT/scripts/install-fashion-mnist.sh"
