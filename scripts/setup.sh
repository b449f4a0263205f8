#!/usr/bin/env bash
# One-time set-up of a fresh machine for vppagent: system tools and a virtualenv.
# Idempotent; `make demo` and `make test` call it when the venv is missing or stale.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v ip >/dev/null || need+=(iproute2)
command -v ping >/dev/null || need+=(iputils-ping)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
# The policy engine's C core (vpp_plugins/kpol/core) is built, tested and
# fuzzed by the test suite: gcc always, clang + its runtime for libFuzzer,
# valgrind for the leak check.
command -v gcc >/dev/null || need+=(gcc)
command -v clang >/dev/null || need+=(clang libclang-rt-dev)
command -v valgrind >/dev/null || need+=(valgrind)
command -v iperf3 >/dev/null || need+=(iperf3)   # python -m perf run, and its tests
command -v ethtool >/dev/null || need+=(ethtool) # the perf tests read the pods' offloads
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "setup: please install: ${need[*]}" >&2
    exit 1
  fi
fi

# The containerd tier (a real CNI client) runs when these are present; a
# machine that cannot install them skips that tier and says so.
./scripts/install_containerd.sh || echo "setup: containerd not installed; tests/containerd will be skipped" >&2

python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip >/dev/null
.venv/bin/pip install -q -e '.[test]'
# The test bed (emulator, fake API server, harnesses) is a package of its own, outside the wheel.
.venv/bin/pip install -q -e ./testbed
touch .venv/.installed
