#!/usr/bin/env bash
# Run by Snakemake inside the new envs/cpu.yaml environment: the clipo package (editable, from the
# repository Snakemake runs in) with every transitive version held to requirements/cpu.lock.
set -euo pipefail
root=${CLIPO_ROOT:-$PWD}
test -f "$root/pyproject.toml" || { echo "cpu.post-deploy: no pyproject.toml in $root (set CLIPO_ROOT)" >&2; exit 2; }
python -m pip install --extra-index-url https://download.pytorch.org/whl/cpu \
    -c "$root/requirements/cpu.lock" -e "$root"
