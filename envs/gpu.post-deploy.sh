#!/usr/bin/env bash
# Run by Snakemake inside the new envs/gpu.yaml environment: the complete GPU set from containers/gpu.lock
# (sglang included) and the clipo package, both without a resolver run, as in containers/Containerfile.gpu.
set -euo pipefail
root=${CLIPO_ROOT:-$PWD}
test -f "$root/containers/gpu.lock" || { echo "gpu.post-deploy: no containers/gpu.lock in $root (set CLIPO_ROOT)" >&2; exit 2; }
python -m pip install --no-deps -r "$root/containers/gpu.lock"
python -m pip install --no-deps -e "$root"
