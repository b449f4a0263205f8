#!/usr/bin/env bash
# Regenerates the Python stubs of the CNI backend contract
# (vppagent/cni/pb/cni_backend.proto) with grpcio-tools.
#
#   scripts/gen_proto.sh            # writes next to the .proto
#   scripts/gen_proto.sh OUT_DIR    # writes into OUT_DIR (the drift test uses this)
#
# PYTHON picks the interpreter (default: the project's .venv).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
src="$repo/vppagent/cni/pb"
out="${1:-$src}"
python="${PYTHON:-$repo/.venv/bin/python}"

mkdir -p "$out"
"$python" -m grpc_tools.protoc -I "$src" \
  --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" \
  "$src/cni_backend.proto"
# protoc writes a top-level import; the stubs live inside a package.
sed -i 's/^import cni_backend_pb2 as /from . import cni_backend_pb2 as /' "$out/cni_backend_pb2_grpc.py"
