#!/usr/bin/env bash
# Installs what the containerd test tier needs (tests/containerd): containerd and ctr, runc,
# a static busybox for the test image, and the reference CNI plugins. Idempotent: installs
# only what is missing. The tier never uses a system containerd service (it starts its own).
set -euo pipefail

need=()
command -v containerd >/dev/null && command -v ctr >/dev/null || need+=(containerd)
command -v containerd-shim-runc-v2 >/dev/null || need+=(containerd)
command -v runc >/dev/null || need+=(runc)
[ -x /usr/bin/busybox ] && /usr/bin/busybox --list 2>/dev/null | grep -qx nc || need+=(busybox-static)
[ -d /usr/lib/cni ] || need+=(containernetworking-plugins)

if [ ${#need[@]} -eq 0 ]; then
  echo "install_containerd: nothing to do"
  exit 0
fi
# Deduplicate (containerd may be listed twice).
mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "install_containerd: please install: ${need[*]}" >&2
  exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "install_containerd: installed ${need[*]}"
