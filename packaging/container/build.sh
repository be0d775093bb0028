#!/usr/bin/env bash
# Builds the rrssh container image (Containerfile, FROM scratch) from a built binary, with
# buildah and no registry: the binary, exactly the shared libraries `ldd` names (and the
# dynamic loader), /etc/passwd and /etc/group entries for the user rrssh (uid 10001) and the
# host's CA certificates go into a root filesystem, which `buildah bud` copies into the image;
# the image is written as an OCI archive.
#
#   packaging/container/build.sh [BINARY] [OUT]
#     BINARY  default ${CARGO_TARGET_DIR:-target}/debug/rrssh
#     OUT     default ${CARGO_TARGET_DIR:-target}/rrssh-image.oci.tar
#
# Environment:
#   IMAGE=NAME:TAG     the image's name in the archive (default localhost/rrssh:VERSION)
#   RRSSH_STRIP=0      keep the binary's debug info (default: `strip --strip-debug`, which keeps
#                      the symbols that backtraces name; a debug build shrinks about fourfold)
#   CONTEXT_DIR=DIR    prepare the build context in DIR and keep it (default: a temp dir)
#   CONTEXT_ONLY=1     only prepare the context (for `docker build`; see Containerfile)
#   SOURCE_DATE_EPOCH  the image's creation time (reproducible builds)
#
# Works as root without a Docker engine or a registry (as in a CI sandbox): vfs storage
# in a private temp dir, chroot isolation (nothing is RUN in the build). Installs buildah with
# apt-get if it is missing.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
target=${CARGO_TARGET_DIR:-$here/../../target}
bin=${1:-$target/debug/rrssh}
out=${2:-$target/rrssh-image.oci.tar}
uid=10001
gid=10001

die() { echo "build.sh: $*" >&2; exit 1; }

[ -f "$bin" ] && [ -x "$bin" ] || die "no executable at $bin"
bin=$(realpath "$bin")
version=$("$bin" --version | awk '{print $2}')
[ -n "$version" ] || die "$bin --version printed no version"
image=${IMAGE:-localhost/rrssh:$version}

[ "${CONTEXT_ONLY:-0}" != 1 ] || [ -n "${CONTEXT_DIR:-}" ] \
  || die "CONTEXT_ONLY=1 needs CONTEXT_DIR (a temp context is removed)"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/rrssh-image.XXXXXX")
cleanup() {
  # vfs layers may hold read-only directories; make them removable first.
  chmod -R u+w "$tmp" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

ctx=${CONTEXT_DIR:-$tmp/context}
mkdir -p "$ctx"
ctx=$(realpath "$ctx")
# A CONTEXT_DIR is reused only if empty or a context made before (only its parts are removed).
if [ -n "$(ls -A "$ctx")" ] && ! [ -d "$ctx/rootfs" -a -f "$ctx/Containerfile" ]; then
  die "CONTEXT_DIR $ctx is neither empty nor a context build.sh made"
fi
rm -rf "$ctx/rootfs" "$ctx/state" "$ctx/Containerfile"
rootfs=$ctx/rootfs
# (/var/lib here, root's: the COPY of state/ then makes only /var/lib/rrssh the user's.)
mkdir -p "$rootfs/usr/local/bin" "$rootfs/etc/ssl/certs" "$rootfs/var/lib" "$ctx/state"
install -d -m 1777 "$rootfs/tmp"

# The binary.
if [ "${RRSSH_STRIP:-1}" != 0 ] && command -v strip >/dev/null 2>&1; then
  strip --strip-debug -o "$rootfs/usr/local/bin/rrssh" "$bin"
else
  cp "$bin" "$rootfs/usr/local/bin/rrssh"
fi
chmod 0755 "$rootfs/usr/local/bin/rrssh"

# Exactly the shared libraries it needs, each at the path `ldd` names (the loader at the path
# the binary's interpreter names), as real files: symlinks resolved.
libs=()
if ldd_out=$(ldd "$bin" 2>&1); then
  while read -r line; do
    case $line in
      *"=> not found"*) die "$bin needs a library this host lacks: $line" ;;
      *"=> /"*) lib=${line#*=> }; libs+=("${lib%% (*}") ;;
      /*) libs+=("${line%% (*}") ;;
    esac
  done <<< "$ldd_out"
elif ! grep -qE 'not a dynamic executable|statically linked' <<< "$ldd_out"; then
  die "ldd $bin: $ldd_out"
fi
for lib in "${libs[@]}"; do
  mkdir -p "$rootfs$(dirname "$lib")"
  cp -L "$lib" "$rootfs$lib"
done

# The user: root and rrssh; no shell, no password.
printf 'root:x:0:0:root:/root:/sbin/nologin\nrrssh:x:%s:%s:rrssh:/var/lib/rrssh:/sbin/nologin\n' \
  "$uid" "$gid" > "$rootfs/etc/passwd"
printf 'root:x:0:\nrrssh:x:%s:\n' "$gid" > "$rootfs/etc/group"
# Names: /etc/hosts, then DNS (the container engine supplies /etc/hosts and /etc/resolv.conf).
printf 'passwd: files\ngroup: files\nhosts: files dns\n' > "$rootfs/etc/nsswitch.conf"
# CA certificates (wss:// and https:// targets, ACME, NATS over TLS), if this host has them.
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  cp -L /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
else
  echo "build.sh: no /etc/ssl/certs/ca-certificates.crt here: the image has no CA certificates" >&2
fi
cp "$here/Containerfile" "$ctx/Containerfile"

echo "context: $ctx ($(du -sh "$rootfs" | cut -f1)): rrssh ${libs[*]}"
[ "${CONTEXT_ONLY:-0}" != 1 ] || exit 0

if ! command -v buildah >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing buildah (apt-get)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah; } \
      > "$tmp/apt.log" 2>&1 || { cat "$tmp/apt.log" >&2; die "apt-get install buildah failed"; }
  else
    die "buildah is not installed (apt-get install buildah)"
  fi
fi

# A private store: nothing is left behind, and nothing is shared with other builds.
buildah=(buildah --root "$tmp/storage" --runroot "$tmp/run" --storage-driver vfs)
bud=(bud --isolation chroot --format oci --layers=false --pull=false
     --build-arg "VERSION=$version" -f "$ctx/Containerfile" -t "$image")
[ -z "${SOURCE_DATE_EPOCH:-}" ] || bud+=(--timestamp "$SOURCE_DATE_EPOCH")
"${buildah[@]}" "${bud[@]}" "$ctx" > "$tmp/bud.log" 2>&1 \
  || { cat "$tmp/bud.log" >&2; die "buildah bud failed"; }

mkdir -p "$(dirname "$out")"
rm -f "$out"
"${buildah[@]}" push --quiet "$image" "oci-archive:$out:$image" > "$tmp/push.log" 2>&1 \
  || { cat "$tmp/push.log" >&2; die "buildah push failed"; }
id=$("${buildah[@]}" images --noheading --no-trunc --format '{{.ID}}' "$image" | head -n1)
echo "image: $image (id ${id#sha256:}), $(( $(du -sb "$rootfs" | cut -f1) / 1000000 )) MB" \
  "unpacked; OCI archive $out: $(( $(stat -c %s "$out") / 1000000 )) MB"
