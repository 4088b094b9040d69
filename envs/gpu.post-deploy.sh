#!/usr/bin/env bash
# Run by Snakemake inside the new envs/gpu.yaml environment: the complete GPU set from containers/gpu.lock
# (sglang included), FlashAttention-2 built from source, and the clipo package — no resolver run, in the
# same order as containers/Containerfile.gpu.
#
# FlashAttention-2 (verl's FSDP engine needs it) must be COMPILED against this env's torch 2.11.0 (CUDA
# 13.0), which needs nvcc from a CUDA 13.x toolkit on PATH (e.g. `module load cuda/13.0`, or CUDA_HOME set)
# and tens of minutes on a node with >= 16 GB of RAM. Without such a compiler this hook stops with an
# error rather than leave an environment in which every training job fails at model load: load the
# toolkit and re-create the environment, or use the container (--sdm apptainer), where it is prebuilt.
set -euo pipefail
root=${CLIPO_ROOT:-$PWD}
test -f "$root/containers/gpu.lock" || { echo "gpu.post-deploy: no containers/gpu.lock in $root (set CLIPO_ROOT)" >&2; exit 2; }
nvcc=${CUDA_HOME:+$CUDA_HOME/bin/}nvcc
release=$("$nvcc" --version 2>/dev/null | sed -n 's/.*release \([0-9]*\)\..*/\1/p' || true)
if [ "$release" != "13" ]; then
    echo "gpu.post-deploy: FlashAttention-2 must be compiled against torch 2.11.0 + CUDA 13.0 and needs nvcc" \
         "13.x (found: ${release:-no nvcc}). Load a CUDA 13 toolkit (module load cuda/13.0, or set CUDA_HOME)" \
         "and re-create the environment, or run with --sdm apptainer (the GPU image has it prebuilt)." >&2
    exit 3
fi
grep -v '^flash-attn-4==' "$root/containers/gpu.lock" > "$CONDA_PREFIX/gpu-first.lock"
python -m pip install --no-deps -r "$CONDA_PREFIX/gpu-first.lock"
grep '^wheel==' "$root/containers/flash-attn.txt" > "$CONDA_PREFIX/wheel.txt"
python -m pip install --no-deps --require-hashes -r "$CONDA_PREFIX/wheel.txt"
FLASH_ATTENTION_FORCE_BUILD=TRUE FLASH_ATTN_CUDA_ARCHS=${FLASH_ATTN_CUDA_ARCHS:-80;90} MAX_JOBS=${MAX_JOBS:-4} \
    NVCC_THREADS=2 python -m pip install --no-deps --no-build-isolation --require-hashes \
    -r "$root/containers/flash-attn.txt"
python -m pip install --no-deps --force-reinstall "$(grep '^flash-attn-4==' "$root/containers/gpu.lock")"
python -m pip install --no-deps -e "$root"
clipo doctor --only packages
