#!/usr/bin/env bash
# Installs what kiln's OpenCL backend builds and runs with: the ICD loader
# and its development files (libOpenCL), the OpenCL headers, PoCL (a CPU
# OpenCL driver, so the backend runs for real without a GPU) and clinfo.
#
# Idempotent: exits 0 at once when the headers, the loader and at least one
# ICD (PoCL or a vendor driver) are present. As root with apt it installs
# the missing Debian packages (refreshing the package lists and retrying
# once when the install fails). Otherwise it prints what to install and
# exits 1.
set -euo pipefail
# shellcheck source=scripts/lib-apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib-apt.sh"

PKGS=(pocl-opencl-icd ocl-icd-opencl-dev opencl-headers clinfo)

have_headers() { [[ -f /usr/include/CL/cl.h ]]; }

have_loader() {
	if command -v ldconfig >/dev/null 2>&1 && ldconfig -p 2>/dev/null | grep 'libOpenCL\.so\.1' >/dev/null; then
		return 0
	fi
	compgen -G '/usr/lib/*/libOpenCL.so.1' >/dev/null || compgen -G '/usr/lib/libOpenCL.so.1' >/dev/null
}

have_icd() { compgen -G '/etc/OpenCL/vendors/*.icd' >/dev/null; }

have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep 'install ok installed' >/dev/null; }

have_all() {
	have_headers && have_loader && have_icd && command -v clinfo >/dev/null 2>&1
}

if have_all; then
	echo "OpenCL already installed: headers, libOpenCL.so.1 and ICDs $(ls /etc/OpenCL/vendors/ | tr '\n' ' ')"
	exit 0
fi

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
	for p in "${PKGS[@]}"; do
		have_pkg "$p" || missing+=("$p")
	done
else
	missing=("${PKGS[@]}")
fi

if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
	if [[ ${#missing[@]} -gt 0 ]]; then
		kiln_apt_install -y --no-install-recommends "${missing[@]}"
	fi
	if have_all; then
		echo "OpenCL installed: ${missing[*]:-nothing new}"
		exit 0
	fi
	echo "error: installed ${missing[*]:-nothing} but OpenCL is still incomplete (need /usr/include/CL/cl.h, libOpenCL.so.1, an ICD in /etc/OpenCL/vendors and clinfo)" >&2
	exit 1
fi

cat >&2 <<MSG
OpenCL is not fully installed (need /usr/include/CL/cl.h, libOpenCL.so.1, an ICD in /etc/OpenCL/vendors and clinfo).
Install it as root on Debian/Ubuntu:
    apt-get update && apt-get install -y ${PKGS[*]}
or install your GPU vendor's OpenCL driver plus ocl-icd-opencl-dev and opencl-headers.
MSG
exit 1
