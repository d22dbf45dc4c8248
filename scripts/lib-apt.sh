# shellcheck shell=bash
# Sourced by kiln's installers (scripts/install-*.sh, bench/peers/install.sh,
# bench/load/run.sh), which check for root and apt-get before calling these.
#
#   kiln_apt_install ARGS...   apt-get install ARGS (noninteractive). When it
#                              fails, most often because the package lists
#                              are stale (a 404 on download) or do not know
#                              the package yet, it runs apt-get update once
#                              and tries again.
#   kiln_apt_update            apt-get update, noted so kiln_apt_install does
#                              not run it a second time.
#
# Both wait up to 10 minutes for another apt or dpkg run's lock (a shared
# machine) instead of failing on it.

KILN_APT_UPDATED=${KILN_APT_UPDATED:-0}

kiln_apt() {
	DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 "$@"
}

kiln_apt_update() {
	KILN_APT_UPDATED=1
	kiln_apt update -q
}

kiln_apt_install() {
	if kiln_apt install "$@"; then
		return 0
	fi
	if [[ "$KILN_APT_UPDATED" == 1 ]]; then
		return 1
	fi
	echo "apt-get install failed; refreshing the package lists (apt-get update) and trying once more" >&2
	kiln_apt_update || return 1
	kiln_apt install "$@"
}
