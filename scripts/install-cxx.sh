#!/usr/bin/env bash
# Installs a C++17 compiler (Debian's g++) for the CUDA kernel emulator
# (kernels/cuda, build tag cudaemu), which compiles the CUDA C kernels as C++
# so `make test` can run them on hosts without a GPU.
#
# Idempotent: exits 0 at once when g++ (or $CXX) is present. As root with
# apt it installs g++ without recommends (refreshing the package lists and
# retrying once when the install fails); otherwise it prints what to install
# and exits 1.
set -euo pipefail
# shellcheck source=scripts/lib-apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib-apt.sh"

CXX=${CXX:-g++}
if command -v "$CXX" >/dev/null 2>&1; then
	echo "C++ compiler already installed: $("$CXX" --version | head -n 1)"
	exit 0
fi
if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
	echo "installing g++ (Debian package) for the CUDA kernel emulator"
	kiln_apt_install -y -qq --no-install-recommends g++ || true
	command -v g++ >/dev/null 2>&1 && exit 0
fi
echo "error: no C++ compiler ($CXX) for the CUDA kernel emulator; install one: apt-get install g++" >&2
exit 1
