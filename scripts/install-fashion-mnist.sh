#!/usr/bin/env bash
# Installs Fashion-MNIST for kiln from the Debian package dataset-fashion-mnist.
# Idempotent: exits 0 at once when the files are already present.
# The four IDX files land in /usr/share/datasets/fashion-mnist (kiln's default).
# A failed install (stale package lists) refreshes the lists and retries once.
set -euo pipefail
# shellcheck source=scripts/lib-apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib-apt.sh"

DIR=/usr/share/datasets/fashion-mnist
PKG=dataset-fashion-mnist
FILES=(train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz)

have_all() {
	local f
	for f in "${FILES[@]}"; do
		[[ -s "$DIR/$f" ]] || return 1
	done
}

if have_all; then
	echo "Fashion-MNIST is already installed in $DIR"
	exit 0
fi

if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
	kiln_apt_install -y "$PKG"
	if have_all; then
		echo "Fashion-MNIST installed in $DIR"
		exit 0
	fi
	echo "error: $PKG installed but the files are not in $DIR; see: dpkg -L $PKG" >&2
	exit 1
fi

cat >&2 <<MSG
Fashion-MNIST is not installed (expected ${FILES[*]} in $DIR).
Install it as root on Debian/Ubuntu:
    apt-get update && apt-get install -y $PKG
or download the four IDX files yourself and pass their folder to kiln with --data-dir.
MSG
exit 1
