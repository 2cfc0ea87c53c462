# Shared helpers of the packaging scripts; sourced, not run.

say() { printf '%s: %s\n' "${me:-$(basename "$0")}" "$*" >&2; }
die() {
	say "error: $*"
	exit 1
}

# host_arch prints the host's Debian architecture.
host_arch() {
	dpkg --print-architecture 2>/dev/null || case $(uname -m) in
	x86_64) echo amd64 ;;
	aarch64) echo arm64 ;;
	armv7l) echo armhf ;;
	*) uname -m ;;
	esac
}

# project_version prints a Debian-compatible version of the checkout:
# v1.2.3 -> 1.2.3, v1.2.3-4-gabc -> 1.2.3+4.gabc, no tag -> 0.0~git<hash>.
project_version() {
	local d
	d=$(git -C "${root:-.}" describe --tags --always --dirty 2>/dev/null || echo dev)
	d=${d#v}
	if [[ $d =~ ^[0-9]+\.[0-9] ]]; then
		d=$(sed -E 's/-([0-9]+)-g/+\1.g/; s/-dirty$/+dirty/' <<<"$d")
	else
		d="0.0~git${d//-/.}"
	fi
	printf '%s\n' "$d"
}

# need PACKAGE COMMAND: installs PACKAGE (as root) when COMMAND is missing.
need() {
	command -v "$2" >/dev/null 2>&1 && return 0
	[ "$(id -u)" -eq 0 ] || die "$2 missing: install the Debian package $1"
	say "installing $1"
	DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "$1" >/dev/null ||
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "$1" >/dev/null; } ||
		die "apt-get install $1 failed"
}

# need_lib ARCH: installs libvpx-dev (libvpx, the VP8 encoder for phones
# without H.264) of Debian architecture ARCH (as root); a foreign one
# through multiarch (dpkg --add-architecture).
need_lib() {
	local arch=$1 pkg=libvpx-dev:$1
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" && return 0
	[ "$(id -u)" -eq 0 ] || die "libvpx for $arch missing: install the Debian package $pkg"
	say "installing $pkg"
	if [ "$arch" != "$(host_arch)" ] && ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
		dpkg --add-architecture "$arch"
		apt-get update -qq
	fi
	DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "$pkg" >/dev/null ||
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "$pkg" >/dev/null; } ||
		die "apt-get install $pkg failed"
}
