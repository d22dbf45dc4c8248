#!/usr/bin/env bash
# Installs the CUDA toolkit kiln's CUDA backend builds with: nvcc, ptxas,
# cuda.h, libnvrtc and the libcuda stub (Debian's nvidia-cuda-toolkit, CUDA
# 11.8, from the contrib and non-free components).
#
# Idempotent: exits 0 at once when nvcc, ptxas, cuda.h and libnvrtc are all
# present. As root with apt it enables contrib + non-free for the suites the
# host already uses (reusing the mirror of its existing Debian source, so no
# mirror is hard-coded here) and installs the toolkit without recommends
# (~1.6 GB download, ~3 min), refreshing the package lists and retrying once
# when the install fails. Otherwise it prints what to install and exits 1.
set -euo pipefail
# shellcheck source=scripts/lib-apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib-apt.sh"

PKG=nvidia-cuda-toolkit
SRC=/etc/apt/sources.list.d/kiln-cuda-contrib.sources
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

find_header() {
	local d
	for d in /usr/include /usr/local/cuda/include /usr/lib/cuda/include; do
		[[ -f "$d/cuda.h" ]] && { echo "$d/cuda.h"; return 0; }
	done
	return 1
}

# (No `grep -q` after a pipe: under pipefail, grep quitting at the first match
# can kill the writer with SIGPIPE and fail the whole test.)
find_nvrtc() {
	if command -v ldconfig >/dev/null 2>&1 && ldconfig -p 2>/dev/null | grep 'libnvrtc\.so' >/dev/null; then
		return 0
	fi
	compgen -G '/usr/local/cuda/lib64/libnvrtc.so*' >/dev/null
}

have_all() {
	command -v nvcc >/dev/null 2>&1 && command -v ptxas >/dev/null 2>&1 && find_header >/dev/null && find_nvrtc
}

# driver_guard refuses, on a host whose NVIDIA kernel driver is loaded, an
# install that would add or change the driver's user-space packages:
# Debian's toolkit depends on its own libcuda1 (>= 520), and a libcuda that
# does not match the loaded kernel module (one from NVIDIA's installer, or
# another version) breaks every CUDA program, nvidia-smi included.
# KILN_NVIDIA_PROC names the driver's version file (for tests);
# KILN_CUDA_ALLOW_DRIVER_PACKAGES=1 installs anyway.
driver_guard() {
	local proc=${KILN_NVIDIA_PROC:-/proc/driver/nvidia/version} sim hits
	[[ -e "$proc" ]] || return 0
	[[ "${KILN_CUDA_ALLOW_DRIVER_PACKAGES:-0}" == 1 ]] && return 0
	sim=$(kiln_apt -s install --no-install-recommends "$PKG" 2>&1) || true
	hits=$(printf '%s\n' "$sim" | awk '$1 == "Inst" && $2 ~ /^(libcuda1|libnvidia-|nvidia-alternative|nvidia-kernel|nvidia-driver|nvidia-legacy|xserver-xorg-video-nvidia)/ {print $2}' | sort -u | tr '\n' ' ')
	if [[ -n "$hits" ]]; then
		cat >&2 <<MSG
error: installing $PKG would install or change the NVIDIA driver's packages (${hits% }) on a host
whose driver is loaded ($(head -n 1 "$proc")): a libcuda that does not match the kernel module
breaks every CUDA program. Install NVIDIA's CUDA toolkit (11.8 or newer) for this driver and put
its bin/ on PATH, or set KILN_CUDA_ALLOW_DRIVER_PACKAGES=1 to install Debian's anyway.
MSG
		return 1
	fi
}

# toolkit_off_path prints the bin/ of an NVIDIA CUDA toolkit installed
# under /usr/local that is not on PATH.
toolkit_off_path() {
	local d
	for d in /usr/local/cuda/bin /usr/local/cuda-*/bin; do
		[[ -x "$d/nvcc" ]] && { echo "$d"; return 0; }
	done
	return 1
}

# Sourced (by a test), the script only defines the functions above.
if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then
	return 0
fi

if have_all; then
	echo "CUDA toolkit already installed: $(nvcc --version | tail -n 2 | head -n 1), header $(find_header)"
	exit 0
fi
if ! command -v nvcc >/dev/null 2>&1 && bin=$(toolkit_off_path); then
	echo "error: NVIDIA's CUDA toolkit is installed in ${bin%/bin} but its bin/ is not on PATH; add it (export PATH=$bin:\$PATH) rather than install Debian's beside it" >&2
	exit 1
fi

# mirror_uri prints the URI of the host's existing Debian source (deb822 or
# one-line format), so the contrib/non-free entry uses the same mirror.
mirror_uri() {
	local f uri
	for f in /etc/apt/sources.list.d/*.sources; do
		[[ -f "$f" ]] || continue
		uri=$(awk '/^URIs:/ {u=$2} /^Suites:/ && / bookworm( |$)/ && u != "" {print u; exit}' "$f")
		if [[ -n "$uri" ]]; then echo "$uri"; return 0; fi
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[[ -f "$f" ]] || continue
		uri=$(awk '$1 == "deb" && $0 ~ / bookworm / {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' "$f")
		if [[ -n "$uri" ]]; then echo "$uri"; return 0; fi
	done
	return 1
}

if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
	driver_guard || exit 1
	# apt may know the name (from a reference) without offering it: ask for a candidate.
	if ! apt-cache policy "$PKG" 2>/dev/null | grep 'Candidate: [0-9]' >/dev/null; then
		if ! uri=$(mirror_uri); then
			echo "error: no Debian bookworm apt source found to add contrib/non-free to; add them yourself, then: apt-get install -y --no-install-recommends $PKG" >&2
			exit 1
		fi
		echo "enabling contrib and non-free from $uri in $SRC"
		cat >"$SRC" <<SOURCES
Types: deb
URIs: $uri
Suites: bookworm bookworm-updates
Components: contrib non-free
Signed-By: $KEYRING
SOURCES
		kiln_apt_update
	fi
	kiln_apt_install -y --no-install-recommends "$PKG"
	if have_all; then
		echo "CUDA toolkit installed: $(nvcc --version | tail -n 2 | head -n 1)"
		exit 0
	fi
	echo "error: $PKG installed but nvcc/ptxas/cuda.h/libnvrtc are not all present; see: dpkg -L $PKG" >&2
	exit 1
fi

cat >&2 <<MSG
The CUDA toolkit is not installed (kiln's -tags cuda build needs nvcc, ptxas, cuda.h and libnvrtc).
Install it as root on Debian 12 (enable the contrib and non-free components first):
    apt-get update && apt-get install -y --no-install-recommends $PKG
or install NVIDIA's CUDA toolkit (11.8 or newer) and put its bin/ on PATH.
MSG
exit 1
