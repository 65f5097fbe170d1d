#!/usr/bin/env bash
# Builds the local image `localhost/busybox:latest` for joblet's podman runtime, without a
# registry: a rootfs holding the static busybox and its applet links, imported with
# `podman import` (~0.1 s). PATH and CMD are set so `sh -c ...` resolves inside the image.
#
# Usage: scripts/make-busybox-image.sh [--data-dir DIR] [IMAGE]
# --data-dir: import into the storage joblet's podman runtime uses for that data dir
# (<DIR>/podman/; the config is written by `python3 -m joblet.node.runtimes.podman DIR`).
# Without it, CONTAINERS_CONF / CONTAINERS_STORAGE_CONF from the environment (or podman's
# defaults) decide where the image goes.
set -euo pipefail
if [ "${1:-}" = "--data-dir" ]; then
  [ -n "${2:-}" ] || { echo "--data-dir needs a directory" >&2; exit 2; }
  src="$(cd "$(dirname "$0")/.." && pwd)/src"
  eval "$(PYTHONPATH="$src${PYTHONPATH:+:$PYTHONPATH}" python3 -m joblet.node.runtimes.podman "$2")"
  shift 2
fi
image="${1:-localhost/busybox:latest}"
busybox="$(command -v busybox || true)"
if [ -z "$busybox" ] || ! file -L "$busybox" 2>/dev/null | grep -q 'statically linked'; then
  for cand in /bin/busybox /usr/bin/busybox; do
    [ -x "$cand" ] && busybox="$cand"
  done
fi
[ -n "$busybox" ] || { echo "busybox not found: apt-get install -y busybox-static" >&2; exit 1; }
command -v podman >/dev/null || { echo "podman not found: apt-get install -y podman runc" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"
mkdir -p "$root"/{bin,tmp,proc,sys,dev,etc,root}
chmod 1777 "$root/tmp"
cp "$(readlink -f "$busybox")" "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
tar -C "$root" -cf "$work/rootfs.tar" .
podman import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["sh"]' \
  "$work/rootfs.tar" "$image" >/dev/null
echo "$image"
