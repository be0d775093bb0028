#!/usr/bin/env bash
# Builds the container image with build.sh from a built binary and proves it works: the image's
# own files run its own CMD (a hub on 0.0.0.0:8022 with the admin listener on 0.0.0.0:9090,
# keys under the volume /var/lib/rrssh, as uid 10001), and from the host:
#   - stdout says `hub listening on`; /healthz, /readyz and /metrics answer on the admin port;
#   - `rrssh peers` logs in with an authorized key; an unauthorized key is refused;
#   - SIGHUP re-reads authorized_keys (a key added then logs in);
#   - the host key is made in the volume (uid 10001, mode 600); SIGTERM stops the hub (exit 0);
#   - run again on the same volume, the hub has the same host key (known_hosts still matches).
#
#   packaging/container/test.sh [BINARY]     (default ${CARGO_TARGET_DIR:-target}/debug/rrssh)
#
# How the image is run (RRSSH_CONTAINER_RUN=auto, the default, tries them in this order):
#   podman  podman runs the image from the OCI archive (vfs storage in a temp dir, cgroupfs;
#           crun, else runc, with ulimits no higher than this process's where raising them is
#           not permitted), published on 127.0.0.1 with slirp4netns, else on --network host
#           with the CMD's addresses moved to 127.0.0.1 (RRSSH_PODMAN_NETWORK=host forces it);
#   chroot  where podman cannot run containers (no user namespaces, cgroups it cannot use):
#           the archive's layers are unpacked into a directory and its entrypoint and CMD run
#           with `chroot --userspec=UID:GID DIR` and the image's environment, on 127.0.0.1:
#           the image's own files (binary, libraries, loader, /etc, the state directory's
#           owner) are shown to suffice.
# It says on stdout which was taken. Everything listens on 127.0.0.1 only; every wait is
# bounded; what it starts is stopped by PID (or container name) and its temp dir removed.
# Needs root (chroot, podman, chown) and python3; installs podman, runc and curl with apt-get
# if missing.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
target=${CARGO_TARGET_DIR:-$here/../../target}
bin=${1:-$target/debug/rrssh}
mode=${RRSSH_CONTAINER_RUN:-auto}
start=$SECONDS

die() { echo "test.sh: FAILED: $*" >&2; exit 1; }
[ -x "$bin" ] || die "no executable at $bin"
bin=$(realpath "$bin")
[ "$(id -u)" = 0 ] || die "needs root (chroot, podman, chown)"
case $mode in auto|podman|chroot) ;; *) die "RRSSH_CONTAINER_RUN=$mode: auto, podman or chroot" ;; esac
command -v python3 >/dev/null || die "needs python3"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/rrssh-image-test.XXXXXX")
pid=          # what runs the hub: podman (its client) or chroot
container=    # the podman container's name
P=()          # podman and its global options
cleanup() {
  local rc=$?
  if [ -n "$container" ]; then
    timeout 30 "${P[@]}" rm -f -t 0 "$container" >/dev/null 2>&1 || true
  fi
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    sleep 1
    kill -KILL "$pid" 2>/dev/null || true
  fi
  # Anything podman left mounted under the temp dir (shm, netns), then the dir itself.
  findmnt -rn -o TARGET 2>/dev/null | grep "^$tmp/" | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  chmod -R u+w "$tmp" 2>/dev/null || true
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

apt_install() {
  command -v apt-get >/dev/null 2>&1 || return 1
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"; } \
    > "$tmp/apt.log" 2>&1 || { cat "$tmp/apt.log" >&2; return 1; }
}
command -v curl >/dev/null 2>&1 || apt_install curl || die "needs curl"

echo "== build (build.sh $bin)"
bash "$here/build.sh" "$bin" "$tmp/image.oci.tar"
built=$SECONDS

# The image as the archive holds it: its config and layers, read with python alone.
mkdir "$tmp/oci"
tar -xf "$tmp/image.oci.tar" -C "$tmp/oci"
python3 - "$tmp/oci" <<'EOF'
import json, os, sys
d = sys.argv[1]
def blob(digest):
    return os.path.join(d, "blobs", *digest.split(":", 1))
index = json.load(open(os.path.join(d, "index.json")))
[m] = index["manifests"]
manifest = json.load(open(blob(m["digest"])))
cfg = json.load(open(blob(manifest["config"]["digest"])))["config"]
def need(ok, what):
    if not ok:
        sys.exit(f"test.sh: FAILED: the image's config: {what}: {json.dumps(cfg)}")
user = cfg.get("User", "")
need(user and user.split(":")[0] not in ("", "0", "root"), "USER is not a non-root uid")
need(cfg.get("Entrypoint") == ["/usr/local/bin/rrssh"], "ENTRYPOINT")
cmd = cfg.get("Cmd") or []
need(cmd[:1] == ["hub"] and "0.0.0.0:8022" in cmd, "CMD is not a hub on 0.0.0.0:8022")
need("/var/lib/rrssh" in (cfg.get("Volumes") or {}), "no VOLUME /var/lib/rrssh")
need("8022/tcp" in (cfg.get("ExposedPorts") or {}), "8022 not exposed")
with open(os.path.join(d, "user"), "w") as f:
    f.write(user)
with open(os.path.join(d, "argv"), "wb") as f:
    f.write(b"".join(a.encode() + b"\0" for a in cfg["Entrypoint"] + cmd))
with open(os.path.join(d, "env"), "wb") as f:
    f.write(b"".join(e.encode() + b"\0" for e in cfg.get("Env") or []))
with open(os.path.join(d, "layers"), "w") as f:
    f.write("".join(blob(l["digest"]) + "\n" for l in manifest["layers"]))
name = m.get("annotations", {}).get("org.opencontainers.image.ref.name", "")
print(f"image {name}: user {user}, {len(manifest['layers'])} layer(s),"
      f" {sum(l['size'] for l in manifest['layers']) // 1000000} MB compressed;"
      f" CMD {' '.join(cmd)}")
EOF
user=$(cat "$tmp/oci/user")
mapfile -d '' argv < "$tmp/oci/argv"
mapfile -d '' image_env < "$tmp/oci/env"
version=$("$bin" --version)

# Free ports on 127.0.0.1 (for the hub and its admin listener).
read -r hub_port admin_port < <(python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*(x.getsockname()[1] for x in s))')

# Keys: one authorized, one not yet (SIGHUP adds it), one never.
"$bin" keygen -f "$tmp/client" -C client >/dev/null
"$bin" keygen -f "$tmp/later" -C later >/dev/null
"$bin" keygen -f "$tmp/stranger" -C stranger >/dev/null

# ---- choose how to run the image ----
how=
run_args=()   # podman run options that work here
netmode=      # podman's network: slirp4netns (ports published on 127.0.0.1) or host
podman_ok() {
  # podman, with the given global and run options, runs the image (`rrssh --version`).
  local -a g=() r=()
  while [ "$1" != -- ]; do g+=("$1"); shift; done; shift
  r=("$@")
  local got
  got=$(timeout 60 "${P[@]}" "${g[@]}" run --rm "${r[@]}" "$image" --version 2>>"$tmp/podman-probe.log") \
    && [ "$got" = "$version" ]
}
if [ "$mode" != chroot ]; then
  if ! command -v podman >/dev/null 2>&1 || ! command -v runc >/dev/null 2>&1; then
    echo "installing podman and runc (apt-get)"
    apt_install podman runc || [ "$mode" = auto ] || die "cannot install podman"
  fi
fi
choose_podman() {  # sets P, run_args, netmode, how; fails if podman cannot run the image
  P=(podman --root "$tmp/podman/root" --runroot "$tmp/podman/run" --tmpdir "$tmp/podman/tmp"
     --storage-driver vfs --events-backend none --cgroup-manager cgroupfs)
  image=$(timeout 120 "${P[@]}" pull -q "oci-archive:$tmp/image.oci.tar" 2>>"$tmp/podman-probe.log") \
    || { echo "podman pull oci-archive:… failed"; return 1; }
  # Ulimits no higher than ours: podman's defaults (nofile 1048576, nproc as high as it can)
  # need CAP_SYS_RESOURCE, which a sandbox may lack. nofile: our hard limit; nproc: 4096,
  # plenty for a hub (its uid's processes and threads), and under what runc may set here (it
  # was refused our hard limit, 96363, in a sandbox whose pid_max is 32768).
  local nofile rt u net
  local -a ulimits runtimes g r n
  nofile=$(ulimit -Hn)
  [ "$nofile" != unlimited ] || nofile=1048576
  ulimits=(--ulimit "nofile=$nofile:$nofile" --ulimit nproc=4096:4096)
  runtimes=("")
  if command -v runc >/dev/null 2>&1; then runtimes+=(runc); fi
  for rt in "${runtimes[@]}"; do
    g=(); [ -z "$rt" ] || g=(--runtime "$rt")
    for u in no yes; do
      r=(); [ $u = no ] || r=("${ulimits[@]}")
      for net in ${RRSSH_PODMAN_NETWORK:-slirp4netns host}; do
        n=(--network "$net"); [ "$net" = host ] || n+=(-p "127.0.0.1:$hub_port:8022")
        echo "# probe: podman ${g[*]} run ${r[*]} ${n[*]}" >> "$tmp/podman-probe.log"
        if podman_ok "${g[@]}" -- "${r[@]}" "${n[@]}"; then
          P+=("${g[@]}"); run_args=("${r[@]}"); netmode=$net
          how="podman (${rt:-default runtime}, network $net)"
          if grep -qv '^#' "$tmp/podman-probe.log"; then
            echo "podman runs the image with: podman ${g[*]} run ${r[*]} --network $net;" \
              "before, it said:"
          fi
          return 0
        fi
      done
    done
  done
  echo "podman cannot run the image here; it said:"
  return 1
}
if [ "$mode" != chroot ]; then
  : > "$tmp/podman-probe.log"
  if ! command -v podman >/dev/null 2>&1; then
    [ "$mode" = auto ] || die "no podman"
    echo "no podman"
  elif ! choose_podman; then
    [ "$mode" = auto ] || { cat "$tmp/podman-probe.log" >&2; die "podman cannot run the image"; }
    how=
  fi
  { grep -v '^#' "$tmp/podman-probe.log" || true; } | sort | uniq -c | sed 's/^ */    /' | head -n 8
fi
[ -n "$how" ] || how="chroot into the image's unpacked layers (as $user)"
echo "== run path: $how"

# ---- run the hub, check it, stop it ----
state=       # the directory that is the image's /var/lib/rrssh
rootfs=$tmp/rootfs
if [ "${how%% *}" = podman ]; then
  # A bind mount is the volume; it is the user's, as the image's own directory is.
  state=$tmp/state
  mkdir -p "$state"
  chown "$user" "$state"
else
  mkdir "$rootfs"
  while read -r layer; do
    tar --numeric-owner -xpf "$layer" -C "$rootfs"
  done < "$tmp/oci/layers"
  state=$rootfs/var/lib/rrssh
fi
cp "$tmp/client.pub" "$state/authorized_keys"
chmod 644 "$state/authorized_keys"

start_hub() {  # $1: which run (first, second)
  : > "$tmp/out"; : > "$tmp/err"
  if [ "${how%% *}" = podman ]; then
    container=rrssh-image-test-$$-$1
    local -a n=(--network "$netmode") cmd=()
    if [ "$netmode" = host ]; then
      # The host's network: the CMD's 0.0.0.0 ports become free ones on 127.0.0.1.
      cmd=("${argv[@]:1}")
      cmd=("${cmd[@]/#0.0.0.0:8022/127.0.0.1:$hub_port}")
      cmd=("${cmd[@]/#0.0.0.0:9090/127.0.0.1:$admin_port}")
    else
      n+=(-p "127.0.0.1:$hub_port:8022" -p "127.0.0.1:$admin_port:9090")
    fi
    timeout 300 "${P[@]}" run --rm --name "$container" "${run_args[@]}" "${n[@]}" \
      -v "$state:/var/lib/rrssh" "$image" "${cmd[@]}" > "$tmp/out" 2> "$tmp/err" &
  else
    local -a cmd=("${argv[@]}")
    cmd=("${cmd[@]/#0.0.0.0:8022/127.0.0.1:$hub_port}")
    cmd=("${cmd[@]/#0.0.0.0:9090/127.0.0.1:$admin_port}")
    timeout 300 env -i "${image_env[@]}" chroot --userspec="$user" "$rootfs" "${cmd[@]}" \
      > "$tmp/out" 2> "$tmp/err" &
  fi
  pid=$!
  local deadline=$((SECONDS + 30))
  until head -n1 "$tmp/out" | grep -q ' INFO hub listening on '; do
    kill -0 "$pid" 2>/dev/null || { cat "$tmp/out" "$tmp/err" >&2; die "the hub exited"; }
    [ $SECONDS -lt $deadline ] || { cat "$tmp/out" "$tmp/err" >&2; die "no 'hub listening on' in 30s"; }
    sleep 0.2
  done
  # The admin listener comes up just after; with slirp4netns the port forward may lag.
  deadline=$((SECONDS + 15))
  until curl -fsS --max-time 2 "http://127.0.0.1:$admin_port/healthz" > "$tmp/healthz" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || { cat "$tmp/out" "$tmp/err" >&2; die "/healthz did not answer in 15s"; }
    sleep 0.2
  done
  [ "$(cat "$tmp/healthz")" = ok ] || die "/healthz said: $(cat "$tmp/healthz")"
  echo "$1 run: $(head -n1 "$tmp/out")"
}
signal_hub() {  # $1: signal
  if [ "${how%% *}" = podman ]; then
    timeout 30 "${P[@]}" kill -s "$1" "$container" >/dev/null
  else
    kill -s "$1" "$pid"
  fi
}
stop_hub() {
  signal_hub TERM
  local deadline=$((SECONDS + 20))
  while kill -0 "$pid" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || { cat "$tmp/out" "$tmp/err" >&2; die "SIGTERM did not stop the hub in 20s"; }
    sleep 0.2
  done
  local rc=0
  wait "$pid" || rc=$?
  pid= container=
  [ $rc = 0 ] || { cat "$tmp/out" "$tmp/err" >&2; die "the hub exited with $rc on SIGTERM"; }
  grep -q 'hub stopped' "$tmp/out" || { cat "$tmp/out" "$tmp/err" >&2; die "no 'hub stopped' on SIGTERM"; }
}
peers() {  # $1: key; the rest: more options
  local key=$1; shift
  # (No agent, no terminal to ask for a password on: only the key given.) The keys of the
  # image's authorized_keys log in as the account the hub runs as: rrssh (uid 10001).
  env -u SSH_AUTH_SOCK -u RRSSH_PASSWORD setsid -w timeout 30 "$bin" peers "ssh://rrssh@127.0.0.1:$hub_port" \
    -i "$tmp/$key" -F none --known-hosts "$tmp/known_hosts" "$@" < /dev/null
}

start_hub first
[ "$(curl -fsS --max-time 5 "http://127.0.0.1:$admin_port/readyz")" = ready ] || die "/readyz is not ready"
curl -fsS --max-time 5 "http://127.0.0.1:$admin_port/metrics" | grep -q '^# TYPE' \
  || die "/metrics has no metrics"
[ "$(peers client --accept-new)" = "[]" ] || die "rrssh peers with the authorized key"
echo "rrssh peers (authorized key): []"
if peers stranger > "$tmp/stranger.out" 2>&1; then die "a key not authorized logged in"; fi
echo "rrssh peers (key not authorized): refused"
cat "$tmp/later.pub" >> "$state/authorized_keys"
signal_hub HUP
deadline=$((SECONDS + 15))
until grep -q 'SIGHUP: authorized keys' "$tmp/out"; do
  [ $SECONDS -lt $deadline ] || { cat "$tmp/out" "$tmp/err" >&2; die "no reload on SIGHUP in 15s"; }
  sleep 0.2
done
[ "$(peers later)" = "[]" ] || die "the key added before SIGHUP cannot log in"
echo "SIGHUP: authorized_keys re-read (the key added logs in)"
[ "$(stat -c '%u:%g %a' "$state/host_ed25519")" = "$user 600" ] \
  || die "host key in the volume: $(stat -c '%u:%g %a' "$state/host_ed25519"), not $user 600"
fingerprint=$(head -n1 "$tmp/out" | grep -o 'SHA256:[^)]*')
stop_hub
echo "SIGTERM: $(grep 'hub stopped' "$tmp/out") (exit 0); host key $fingerprint in the volume"

# Again on the same volume: the same host key, so known_hosts still matches (no --accept-new).
start_hub second
[ "$(head -n1 "$tmp/out" | grep -o 'SHA256:[^)]*')" = "$fingerprint" ] || die "the host key changed"
[ "$(peers client)" = "[]" ] || die "rrssh peers after the restart"
stop_hub
echo "== ok (${how}): build $((built - start))s, checks $((SECONDS - built))s, total $((SECONDS - start))s"
