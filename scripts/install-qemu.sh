#!/usr/bin/env bash
# Installs qemu-user-static (Debian package) so `make test` can run the
# pure-Go CPU backend's tests as GOARCH=arm64 binaries on an amd64 host
# (go test -exec qemu-aarch64-static).
#
# Idempotent: exits 0 at once when qemu-aarch64-static is present, or on an
# arm64 host, which needs no emulator. As root with apt it installs the
# package (refreshing the package lists and retrying once when the install
# fails); otherwise it prints what to install and exits 1.
set -euo pipefail
# shellcheck source=scripts/lib-apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib-apt.sh"

if [[ "$(${GO:-go} env GOHOSTARCH)" == arm64 ]]; then
	echo "arm64 host: the arm64 tests run natively"
	exit 0
fi
if command -v qemu-aarch64-static >/dev/null 2>&1; then
	echo "qemu-aarch64-static already installed"
	exit 0
fi
if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
	echo "installing qemu-user-static (Debian package) for the arm64 tests"
	kiln_apt_install -y -qq --no-install-recommends qemu-user-static || true
	command -v qemu-aarch64-static >/dev/null 2>&1 && exit 0
fi
echo "error: qemu-aarch64-static is missing; install it: apt-get install qemu-user-static" >&2
exit 1
