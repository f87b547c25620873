#!/usr/bin/env bash
# Builds CRIU 4.1.1 from Debian trixie's source package into a cache directory and prints the
# path of the built binary. Debian bookworm's own criu (3.17) fails on kernels >= 6.13 ("vdso:
# Unexpected rt vDSO area bounds"), and trixie's binary package needs a newer libc, so we build
# from trixie's orig tarball with bookworm's toolchain (see shared/design/PLATFORM.md, CRIU).
#
# The build runs once; later calls find the binary in the cache and return at once. The system's
# apt sources are left untouched: trixie's source index lives in a private apt state directory.
#
#   HPC_CRIU_CACHE   cache directory (default /var/cache/hpc-criu)
#   HPC_CRIU_MIRROR  Debian mirror for the trixie source (default: the one in the system's sources)
#
# Exit status 0 and the binary's path on stdout when a working criu >= 4.1 is available;
# non-zero with the reason on stderr otherwise (tests then skip, saying why).
set -euo pipefail

version=4.1.1
cache="${HPC_CRIU_CACHE:-/var/cache/hpc-criu}"
bin="$cache/criu-$version/criu/criu"

if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q "Version: $version"; then
	echo "$bin"
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "build-criu: needs root (apt-get build dependencies)" >&2
	exit 1
fi
log() { echo "build-criu: $*" >&2; }

mirror="${HPC_CRIU_MIRROR:-}"
if [ -z "$mirror" ]; then
	mirror=$(grep -hoE '^(URIs:|deb) +https?://[^ ]+/debian/?' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null |
		awk '{print $2}' | head -n1 || true)
	mirror="${mirror:-http://deb.debian.org/debian}"
fi

mkdir -p "$cache"
# One builder at a time (CI and a developer may start it together).
exec 9>"$cache/.lock"
flock 9
if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q "Version: $version"; then
	echo "$bin"
	exit 0
fi

aptdir="$cache/apt"
mkdir -p "$aptdir/lists/partial" "$aptdir/cache/archives/partial"
echo "deb-src [trusted=yes] $mirror trixie main" >"$aptdir/trixie.list"
aptopts=(-o "Dir::Etc::sourcelist=$aptdir/trixie.list" -o "Dir::Etc::sourceparts=-"
	-o "Dir::State::Lists=$aptdir/lists" -o "Dir::Cache=$aptdir/cache")

log "installing build dependencies"
deps=(build-essential libprotobuf-dev libprotobuf-c-dev protobuf-c-compiler protobuf-compiler
	python3-protobuf pkg-config libnl-3-dev libnet1-dev libcap-dev libbsd-dev libaio-dev uuid-dev
	libgnutls28-dev libnftables-dev)
missing=()
for d in "${deps[@]}"; do
	dpkg-query -W -f='${Status}' "$d" 2>/dev/null | grep -q "install ok installed" || missing+=("$d")
done
if [ ${#missing[@]} -gt 0 ]; then
	apt-get update -qq >&2 || true
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

log "fetching criu $version source from trixie ($mirror)"
apt-get "${aptopts[@]}" update -qq >&2
work="$cache/src"
rm -rf "$work" && mkdir -p "$work"
# Only the orig tarball is needed; the mirror may lack the .dsc or the Debian diff, which makes
# apt-get fail after it fetched the tarball: judge by the tarball, not by apt-get's status.
(cd "$work" && apt-get "${aptopts[@]}" source --download-only criu >&2) || true
tarball=$(ls "$work"/criu_"$version"*.orig.tar.* 2>/dev/null | head -n1 || true)
if [ -z "$tarball" ]; then
	log "trixie's source of criu $version not found (got: $(ls "$work"))"
	exit 1
fi

log "building (takes a minute or two)"
rm -rf "$cache/criu-$version"
tar -C "$cache" -xf "$tarball"
make -C "$cache/criu-$version" -j"$(nproc)" criu >"$cache/build.log" 2>&1 || {
	tail -n 30 "$cache/build.log" >&2
	log "make failed; full log in $cache/build.log"
	exit 1
}
rm -rf "$work"
"$bin" --version >&2
echo "$bin"
