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

# vpx_dir ARCH prints the directory of libvpx.a (and, above it, the headers
# under usr/include) of Debian architecture ARCH, for linking libvpx
# statically. The host's comes from libvpx-dev, installed as root when
# missing. A foreign one is extracted from its libvpx-dev package into the
# user's cache, not installed: a multiarch libc6 beside the cross
# compiler's would break the qemu-user runs of the cross binaries (its
# dynamic loader and that C library differ). Fetching it adds ARCH to dpkg's
# architectures (as root) and updates apt's lists.
vpx_dir() {
	local arch=$1 ma cache tmp
	ma=$(dpkg-architecture -a "$arch" -qDEB_HOST_MULTIARCH 2>/dev/null)
	if [ "$arch" = "$(host_arch)" ]; then
		[ -f "/usr/lib/$ma/libvpx.a" ] || need libvpx-dev "/usr/lib/$ma/libvpx.a"
		printf '%s\n' "/usr/lib/$ma"
		return
	fi
	cache=${XDG_CACHE_HOME:-$HOME/.cache}/intercomd/libvpx-dev-$arch
	if [ ! -f "$cache/usr/lib/$ma/libvpx.a" ]; then
		[ "$(id -u)" -eq 0 ] || die "libvpx for $arch missing: run as root once to fetch libvpx-dev:$arch into $cache"
		say "fetching libvpx-dev:$arch"
		if ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
			dpkg --add-architecture "$arch"
			apt-get update -qq
		fi
		tmp=$(mktemp -d)
		chmod 777 "$tmp"
		(cd "$tmp" && apt-get download -qq "libvpx-dev:$arch" >/dev/null 2>&1) ||
			{ apt-get update -qq && (cd "$tmp" && apt-get download -qq "libvpx-dev:$arch" >/dev/null 2>&1); } ||
			die "apt-get download libvpx-dev:$arch failed"
		rm -rf "$cache.tmp"
		dpkg-deb -x "$tmp"/libvpx-dev_*.deb "$cache.tmp"
		rm -rf "$tmp" "$cache"
		mv "$cache.tmp" "$cache"
	fi
	printf '%s\n' "$cache/usr/lib/$ma"
}
