#!/usr/bin/env bash
# Builds the project's CPU image (containers/Containerfile.cpu) with podman on a bare Debian 12 machine
# and runs a smoke test inside it. Needs root. No registry is used: the base image is debootstrapped here.
# Recipe and pitfalls: podman needs runc (crun fails on hybrid cgroups), explicit ulimits and the file
# events logger (containers.conf below); the host's pip wheel folders are invisible inside a build, so the
# CPU torch wheel travels in the build context's wheelhouse (containers/wheels/).
#
# Output: the smoke results between "== smoke:" markers; last line "CPU image OK <image> <seconds>s".
# Env: CLIPO_CPU_IMAGE (tag, default localhost/clipo-cpu:ci), CLIPO_CONTAINER_WORK (scratch, default
# build/container), CLIPO_PYTHON (host python that downloads the torch wheel, default .venv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
IMAGE=${CLIPO_CPU_IMAGE:-localhost/clipo-cpu:ci}
WORK=${CLIPO_CONTAINER_WORK:-$ROOT/build/container}
HOST_PY=${CLIPO_PYTHON:-$ROOT/.venv/bin/python}
started=$SECONDS
say() { printf '[%4ss] %s\n' "$((SECONDS - started))" "$*"; }
die() { echo "build-cpu-image: $*" >&2; exit 2; }

[ "$(id -u)" = 0 ] || die "must run as root (podman builds here run rootful)"
mkdir -p "$WORK"

# 1. Tools (Debian packages). podman brings buildah, conmon, netavark; runc is named explicitly.
if ! command -v podman >/dev/null || ! command -v debootstrap >/dev/null || ! command -v runc >/dev/null; then
    say "installing podman debootstrap runc"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman debootstrap runc >/dev/null
fi

# 2. Engine settings that differ from the defaults on this kind of machine, without touching /etc.
export CONTAINERS_CONF=$WORK/containers.conf
nofile=$(ulimit -Hn)
cat > "$CONTAINERS_CONF" <<CONF
[containers]
default_ulimits = ["nofile=${nofile}:${nofile}", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF

# 3. Base image: a minimal Debian 12 root file system imported as localhost/debian:bookworm.
if ! podman image exists localhost/debian:bookworm; then
    mirror=$(grep -hoE '^(URIs:|deb) +https?://[^ ]+' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list \
             2>/dev/null | grep -v security | awk 'NR == 1 {print $2}' || true)
    mirror=${mirror:-http://deb.debian.org/debian}
    say "debootstrap bookworm from $mirror"
    rm -rf "$WORK/rootfs"
    debootstrap --variant=minbase bookworm "$WORK/rootfs" "$mirror" >"$WORK/debootstrap.log" 2>&1 \
        || { tail -n 20 "$WORK/debootstrap.log"; die "debootstrap failed (log: $WORK/debootstrap.log)"; }
    rm -rf "$WORK/rootfs/var/lib/apt/lists/"* "$WORK/rootfs/var/cache/apt/"*.bin
    tar -C "$WORK/rootfs" -c . | podman import - localhost/debian:bookworm >/dev/null
    rm -rf "$WORK/rootfs"
fi

# 4. Stand-in for python:3.11-slim (Docker Hub is unreachable here).
if ! podman image exists localhost/python:3.11-slim; then
    say "building the python:3.11-slim stand-in"
    mkdir -p "$WORK/standin"
    cp /etc/ssl/certs/ca-certificates.crt "$WORK/standin/host-ca.crt"
    podman build -q --pull=never -f .ci/python-slim-standin.Containerfile -t localhost/python:3.11-slim \
        "$WORK/standin" >/dev/null
fi

# 5. Wheelhouse: the CPU torch wheel the host's pip resolves (its local wheel folder), as on air-gapped clusters.
torch_pin=$(grep -E '^torch==' requirements/cpu.lock | head -n1 | sed 's/^torch==//; s/+.*//')
if ! ls containers/wheels/torch-"$torch_pin"*.whl >/dev/null 2>&1; then
    say "downloading torch==$torch_pin into containers/wheels"
    "$HOST_PY" -m pip download -q --no-deps --only-binary=:all: -d containers/wheels "torch==$torch_pin"
fi

# 6. The project image, exactly as users build it, with the base image and torch source swapped in.
say "building $IMAGE from containers/Containerfile.cpu"
podman build --pull=never --build-arg BASE_IMAGE=localhost/python:3.11-slim --build-arg TORCH_INDEX= \
    -f containers/Containerfile.cpu -t "$IMAGE" . >"$WORK/build.log" 2>&1 \
    || { tail -n 40 "$WORK/build.log"; die "podman build failed (log: $WORK/build.log)"; }
grep -E '^clipo [0-9]' "$WORK/build.log" || true

# 7. Smoke test inside the image: the CLI, the synthetic data of the mini track, the reward tests.
run() { podman run --rm --network=none -v "$ROOT:/src:ro" -w /src "$IMAGE" "$@"; }
say "smoke test"
echo "== smoke: clipo --help"
run clipo --help
echo "== smoke: clipo data synth"
run bash -c 'clipo data synth --data-dir /tmp/d --seed 0 --n-train 16 --n-eval 8 >/dev/null && ls /tmp/d/mini'
echo "== smoke: pytest tests/test_rewards.py"
run python -m pytest -q -p no:cacheprovider tests/test_rewards.py
echo "== smoke: end"
echo "CPU image OK $IMAGE $((SECONDS - started))s"
