#!/usr/bin/env bash
# Installs Fashion-MNIST for kiln from the Debian package dataset-fashion-mnist.
# Idempotent: exits 0 at once when the files are already present.
# The four IDX files land in /usr/share/datasets/fashion-mnist (kiln's default).
set -euo pipefail

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
	# Refresh the package lists only when apt does not know the package yet.
	if ! apt-cache show "$PKG" >/dev/null 2>&1; then
		apt-get update
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y "$PKG"
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
