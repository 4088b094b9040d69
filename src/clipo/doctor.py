"""``clipo doctor``: the preflight to run on a GPU node before submitting the verl runs.

``clipo doctor --configfile configs/paper.yaml --sdm apptainer`` checks what the first real job would
otherwise find out the hard way, one row per check with the fix for each failure, and exits 1 when any
check fails:

- ``gpus``: NVIDIA GPUs visible (nvidia-smi) and at least as many as one training job uses;
- ``driver``: the host driver runs the image's CUDA 13.0 (R580 or newer);
- ``torch-cuda``: torch is a CUDA 13 build and a bf16 matmul runs on the GPU;
- ``versions``, ``flash-attn-2``, ``flash-attn-4``, ``sglang-kernels`` (group ``packages``): the GPU
  image's pins (containers/gpu.lock, containers/flash-attn.txt) are what is installed, FlashAttention-2's
  CUDA extension is compiled in and imports, flash-attn-4's files were not overwritten by FA2's copy of
  flash_attn/cute, and sglang-kernel / flashinfer-python are the versions SGLang's own metadata pins
  (imported too where a GPU is present);
- ``fa2-varlen``: FlashAttention-2's variable-length kernel (what verl's packed sequences call) runs on
  the GPU and matches PyTorch's attention (skipped without a GPU);
- ``config``: the config's GPUs per training job equal the tracks' ``trainer.n_gpus_per_node``;
- ``models``: every initial policy is a complete local folder (compute nodes must not need the hub);
- ``data``: the tracks' released files are present with their sha256 (fetch them on the login node);
- ``disk``: room under results/ for every run's checkpoints (two verl checkpoints with AdamW state and
  the merged final model ≈ 18 × the model's bf16 weight files);
- ``apptainer`` (with ``--sdm apptainer``): Apptainer installed, the GPU image present and able to see
  the GPUs with ``--nv``.

The container build runs ``clipo doctor --only packages`` (no GPU needed).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.util
import itertools
import shutil
import subprocess
from base64 import urlsafe_b64encode
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

GPU_PINS = {
    "torch": "2.11.0",
    "transformers": "5.9.0",
    "verl": "0.9.1",
    "sglang": "0.5.12",
    "flash-attn": "2.8.3",
    "flash-attn-4": "4.0.0b15",
    "sglang-kernel": "0.4.2.post2",
    "flashinfer-python": "0.6.11.post1",
}
"""What the GPU image installs (containers/gpu.lock, containers/flash-attn.txt; a test keeps them equal).
The expected versions of every check; sglang-kernel and flashinfer-python are SGLang 0.5.12's ``==`` pins."""

SGLANG_KERNELS = {"sglang-kernel": "sgl_kernel", "flashinfer-python": "flashinfer"}
"""SGLang's compiled kernel packages (distribution → module): SGLang pins each exactly, and a mismatch
fails only when SGLang first calls into it, mid-rollout."""

CUDA_MAJOR = "13"
MIN_DRIVER = 580
"""torch 2.11.0's CUDA 13.0 wheels and the CUDA 13.0 base image need an R580-series driver or newer."""

CHECKPOINT_BYTES_PER_WEIGHT_BYTE = 18
"""Disk per run relative to the model's bf16 weights (2 B/param): two kept verl checkpoints of fp32
weights + AdamW moments (16 B/param each) and the merged final model (≈ 4 B/param)."""


@dataclass
class Result:
    name: str
    ok: bool | None
    """True pass, False fail, None skipped (not applicable)."""
    detail: str
    fix: str = ""


@dataclass
class Context:
    """What the checks look at, resolved from the config files and the command line."""

    tracks: list[str]
    models: dict[str, str]
    """Short model name -> the path or hub id the config gives."""
    n_runs: int
    train_gpus: int | None
    data_dir: Path
    results_dir: Path
    sdm: str
    image: Path
    smi: list[dict] | None = field(default=None, repr=False)


# ---------------------------------------------------------------------------------------------
# Probes (one place each, so tests can stand in for the machine)
# ---------------------------------------------------------------------------------------------
def nvidia_smi() -> list[dict] | str:
    """One dict per GPU (name, driver, memory in MiB), or why there are none."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return "nvidia-smi not found: no NVIDIA driver on this machine"
    try:
        done = subprocess.run(
            [exe, "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=60,
        )
    except subprocess.TimeoutExpired:
        return "nvidia-smi did not answer within 60 s"
    if done.returncode != 0:
        return f"nvidia-smi failed: {(done.stdout + done.stderr).strip()[:200]}"
    gpus = []
    for line in done.stdout.strip().splitlines():
        name, driver, memory = (x.strip() for x in line.split(","))
        gpus.append({"name": name, "driver": driver, "memory_mib": int(float(memory))})
    return gpus or "nvidia-smi lists no GPU"


def _gpus(ctx: Context) -> list[dict] | str:
    if ctx.smi is None:
        ctx.smi = nvidia_smi()
    return ctx.smi


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def _import(module: str):
    return importlib.import_module(module)


def _requires(dist: str) -> list[str] | None:
    """The Requires-Dist lines of an installed distribution, or None when it is not installed."""
    try:
        return importlib.metadata.requires(dist) or []
    except importlib.metadata.PackageNotFoundError:
        return None


FA2_TOLERANCE = 2e-2
"""Largest |FA2 − PyTorch| accepted on the bf16 probe (bf16 rounding of outputs of size ~1 is ~4e-3)."""


def fa2_varlen_error(device: str = "cuda") -> float:
    """Max |flash_attn_varlen_func − PyTorch attention| on two packed causal sequences (bf16)."""
    import torch
    import torch.nn.functional as F
    from flash_attn import flash_attn_varlen_func

    generator = torch.Generator(device=device).manual_seed(0)
    lengths, heads, dim = (3, 5), 2, 64
    q, k, v = (torch.randn(sum(lengths), heads, dim, device=device, dtype=torch.bfloat16, generator=generator)
               for _ in range(3))
    bounds = [0, *itertools.accumulate(lengths)]
    cu_seqlens = torch.tensor(bounds, device=device, dtype=torch.int32)
    out = flash_attn_varlen_func(q, k, v, cu_seqlens, cu_seqlens, max(lengths), max(lengths), causal=True)
    error = 0.0
    for start, end in itertools.pairwise(bounds):
        heads_first = [x[start:end].transpose(0, 1).float() for x in (q, k, v)]
        expected = F.scaled_dot_product_attention(*heads_first, is_causal=True).transpose(0, 1)
        error = max(error, (out[start:end].float() - expected).abs().max().item())
    return error


# ---------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------
def check_gpus(ctx: Context) -> Result:
    gpus, need = _gpus(ctx), ctx.train_gpus or 1
    if isinstance(gpus, str):
        return Result("gpus", False, f"no GPU: {gpus}",
                      f"run clipo doctor on a GPU node (e.g. srun --nodes=1 --gpus={need} --pty clipo doctor "
                      "...); on a login node the GPU checks cannot pass")
    names = ", ".join(sorted({f"{g['name']} ({g['memory_mib'] // 1024} GiB)" for g in gpus}))
    if len(gpus) < need:
        return Result("gpus", False, f"{len(gpus)} visible, a training job uses {need}: {names}",
                      f"ask SLURM for {need} GPUs on one node, or train the one-GPU track (configs/gpu-1.yaml)")
    return Result("gpus", True, f"{len(gpus)} visible (jobs use {need}): {names}")


def check_driver(ctx: Context) -> Result:
    gpus = _gpus(ctx)
    if isinstance(gpus, str):
        return Result("driver", False, gpus, f"install an NVIDIA driver of the R{MIN_DRIVER} series or newer")
    driver = gpus[0]["driver"]
    try:
        major = int(driver.split(".")[0])
    except ValueError:
        return Result("driver", False, f"unreadable driver version {driver!r}", "check nvidia-smi")
    if major < MIN_DRIVER:
        return Result("driver", False, f"driver {driver}: too old for CUDA {CUDA_MAJOR}.0 (torch 2.11.0 cu13)",
                      f"ask the admins for a driver >= R{MIN_DRIVER} (CUDA {CUDA_MAJOR}); R535-R570 fail with "
                      "'driver too old'")
    return Result("driver", True, f"driver {driver} (>= R{MIN_DRIVER}, CUDA {CUDA_MAJOR}.0)")


def check_torch_cuda(ctx: Context) -> Result:
    import torch

    fix = "use the GPU image (containers/Containerfile.gpu) or envs/gpu.yaml: torch 2.11.0 built for CUDA 13.0"
    if not (torch.version.cuda or "").startswith(f"{CUDA_MAJOR}."):
        built = f"CUDA {torch.version.cuda}" if torch.version.cuda else "no CUDA (a CPU build)"
        return Result("torch-cuda", False, f"torch {torch.__version__} is built for {built}", fix)
    if not torch.cuda.is_available():
        return Result("torch-cuda", False, f"torch {torch.__version__}: torch.cuda.is_available() is False",
                      "check the gpus and driver rows; in a container pass --nv")
    try:
        a = torch.randn(256, 256, device="cuda", dtype=torch.bfloat16)
        value = float((a @ a).float().abs().sum())
        torch.cuda.synchronize()
    except RuntimeError as e:
        return Result("torch-cuda", False, f"bf16 matmul on cuda:0 failed: {e}", fix)
    return Result("torch-cuda", value > 0, f"torch {torch.__version__} CUDA {torch.version.cuda}, bf16 matmul ok")


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def check_versions(ctx: Context) -> Result:
    wrong = {d: _version(d) for d, v in GPU_PINS.items() if _version(d) != v}
    if wrong:
        found = ", ".join(f"{d} {v or 'missing'} (want {GPU_PINS[d]})" for d, v in wrong.items())
        return Result("versions", False, found,
                      "use the GPU image or envs/gpu.yaml (they install containers/gpu.lock and "
                      "containers/flash-attn.txt)")
    return Result("versions", True, ", ".join(f"{d} {v}" for d, v in GPU_PINS.items()))


def check_flash_attn_2(ctx: Context) -> Result:
    fix = ("build it as containers/Containerfile.gpu does: FLASH_ATTENTION_FORCE_BUILD=TRUE pip install "
           "--no-deps --no-build-isolation --require-hashes -r containers/flash-attn.txt (needs nvcc 13)")
    if _version("flash-attn") is None:
        return Result("flash-attn-2", False, "flash-attn (FlashAttention-2) is not installed; verl loads actor "
                      "and reference with attn_implementation=flash_attention_2", fix)
    if importlib.util.find_spec("flash_attn_2_cuda") is None:
        return Result("flash-attn-2", False, f"flash-attn {_version('flash-attn')} has no compiled "
                      "flash_attn_2_cuda extension", fix)
    try:
        _import("flash_attn")
    except Exception as e:  # noqa: BLE001 - e.g. an undefined symbol: compiled against another torch
        return Result("flash-attn-2", False, f"import flash_attn failed: {type(e).__name__}: {e}"[:300],
                      "it was compiled against a different torch or CUDA; " + fix)
    return Result("flash-attn-2", True, f"flash-attn {_version('flash-attn')} with flash_attn_2_cuda, imports")


def check_fa2_varlen(ctx: Context) -> Result:
    if not _cuda_available():
        return Result("fa2-varlen", None, "skipped: no CUDA GPU here to run the kernel on (run clipo doctor on "
                      "a GPU node)")
    fix = ("'no kernel image is available' means FlashAttention-2 was compiled for other GPUs: rebuild the "
           "image with FLASH_ATTN_CUDA_ARCHS naming this one (containers/Containerfile.gpu; 80 A100, 90 H100)")
    try:
        error = fa2_varlen_error()
    except Exception as e:  # noqa: BLE001 - the kernel's own error is the diagnosis
        return Result("fa2-varlen", False, f"flash_attn_varlen_func on cuda:0 failed: {type(e).__name__}: {e}"[:300],
                      fix)
    if not error <= FA2_TOLERANCE:
        return Result("fa2-varlen", False, f"flash_attn_varlen_func differs from PyTorch's attention by {error:.3g} "
                      f"(> {FA2_TOLERANCE})", fix)
    return Result("fa2-varlen", True, f"flash_attn_varlen_func on 2 packed sequences matches PyTorch's attention "
                  f"(max diff {error:.2g})")


def _sglang_pins() -> dict[str, str] | str:
    """SGLang's own version specifier of each of its kernel packages, or why it cannot be read."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    requires = _requires("sglang")
    if requires is None:
        return "sglang is not installed"
    wanted = {canonicalize_name(d): d for d in SGLANG_KERNELS}
    pins: dict[str, str] = {}
    for line in requires:
        req = Requirement(line)
        name = canonicalize_name(req.name)
        if name in wanted and str(req.specifier):
            pins[wanted[name]] = ",".join(filter(None, [pins.get(wanted[name]), str(req.specifier)]))
    return pins


def check_sglang_kernels(ctx: Context) -> Result:
    from packaging.specifiers import SpecifierSet

    fix = ("use the GPU image or envs/gpu.yaml (containers/gpu.lock pins SGLang's kernels); by hand: pip install "
           "--no-deps " + " ".join(f"{d}=={GPU_PINS[d]}" for d in SGLANG_KERNELS))
    pins = _sglang_pins()
    if isinstance(pins, str):
        return Result("sglang-kernels", False, pins, fix)
    problems, found = [], []
    for dist in SGLANG_KERNELS:
        spec, installed = SpecifierSet(pins.get(dist, ""), prereleases=True), _version(dist)
        if dist not in pins:
            problems.append(f"sglang {_version('sglang')} names no {dist} version (GPU_PINS says {GPU_PINS[dist]})")
        elif GPU_PINS[dist] not in spec:
            problems.append(f"sglang {_version('sglang')} needs {dist}{spec}, the image pins {GPU_PINS[dist]}")
        if installed is None or installed not in spec:
            problems.append(f"{dist} {installed or 'missing'} (sglang needs {spec or GPU_PINS[dist]})")
        found.append(f"{dist} {installed}")
    if problems:
        return Result("sglang-kernels", False, "; ".join(problems), fix)
    if not _cuda_available():
        return Result("sglang-kernels", True, ", ".join(found) + " as sglang pins them (import skipped: no GPU)")
    for dist, module in SGLANG_KERNELS.items():
        try:
            _import(module)
        except Exception as e:  # noqa: BLE001 - a broken kernel package fails here, not mid-rollout
            return Result("sglang-kernels", False, f"import {module} ({dist}) failed: {type(e).__name__}: {e}"[:300],
                          fix)
    return Result("sglang-kernels", True, ", ".join(found) + " as sglang pins them, both import")


def changed_files(dist: importlib.metadata.Distribution) -> list[str]:
    """Files of an installed distribution whose content no longer matches its RECORD hashes."""
    changed = []
    for f in dist.files or []:
        if f.hash is None:
            continue
        path = Path(dist.locate_file(f))
        if not path.exists():
            changed.append(str(f))
            continue
        digest = urlsafe_b64encode(hashlib.new(f.hash.mode, path.read_bytes()).digest()).rstrip(b"=").decode()
        if digest != f.hash.value:
            changed.append(str(f))
    return changed


def check_flash_attn_4(ctx: Context) -> Result:
    try:
        dist = importlib.metadata.distribution("flash-attn-4")
    except importlib.metadata.PackageNotFoundError:
        return Result("flash-attn-4", False, "flash-attn-4 is not installed (SGLang uses it)",
                      "install the flash-attn-4 pin of containers/gpu.lock with --no-deps")
    changed = changed_files(dist)
    if changed:
        return Result("flash-attn-4", False, f"{len(changed)} of its files differ from its RECORD, e.g. "
                      f"{changed[0]} (FlashAttention-2 ships its own flash_attn/cute)",
                      "reinstall it after flash-attn: pip install --no-deps --force-reinstall flash-attn-4==" +
                      GPU_PINS["flash-attn-4"])
    return Result("flash-attn-4", True, f"flash-attn-4 {dist.version}, files intact")


def check_config(ctx: Context) -> Result:
    from clipo.methods import get_track

    per_track = {t: get_track(t).n_gpus_per_node for t in ctx.tracks}
    if not per_track:
        return Result("config", None, "no GPU track in the config")
    if len(set(per_track.values())) > 1:
        return Result("config", False, f"tracks need different GPU counts per job: {per_track}",
                      "put one-GPU and 8-GPU tracks in separate config files (resources.train_verl.gpu is one value)")
    need = next(iter(per_track.values()))
    if ctx.train_gpus is not None and ctx.train_gpus != need:
        return Result("config", False, f"resources.train_verl.gpu={ctx.train_gpus} but track(s) "
                      f"{', '.join(per_track)} run trainer.n_gpus_per_node={need}",
                      f"set resources: {{train_verl: {{gpu: {need}}}}} in the config")
    return Result("config", True, f"{ctx.n_runs} training runs of {need} GPU(s) on tracks {', '.join(per_track)}")


def model_problem(path: str) -> str | None:
    """Why a model path is not a complete local Hugging Face folder, or None."""
    folder = Path(path)
    if not folder.is_dir():
        return f"{path}: not a local folder (a hub id is fetched at run time, which compute nodes may not do)"
    missing = [n for n in ("config.json",) if not (folder / n).exists()]
    if not any((folder / n).exists() for n in ("tokenizer.json", "tokenizer_config.json")):
        missing.append("tokenizer.json")
    if not list(folder.glob("*.safetensors")):
        missing.append("*.safetensors")
    return f"{path}: missing {', '.join(missing)}" if missing else None


def check_models(ctx: Context) -> Result:
    problems = [p for p in (model_problem(path) for path in ctx.models.values()) if p]
    if problems:
        short = next(s for s, p in ctx.models.items() if model_problem(p))
        return Result("models", False, "; ".join(problems),
                      f"on the login node: huggingface-cli download {ctx.models[short]} --local-dir "
                      f"/shared/models/{short}, then models: {{{short}: /shared/models/{short}}} in the config")
    return Result("models", True, f"{len(ctx.models)} local folder(s): {', '.join(ctx.models)}")


def data_files(tracks: list[str]):
    from clipo.data.registry import RELEASED, data_track

    wanted = {data_track(t) for t in tracks}
    return [d for d in RELEASED if d.track in wanted]


def check_data(ctx: Context) -> Result:
    import pooch

    files = data_files(ctx.tracks)
    bad = []
    for d in files:
        path = ctx.data_dir / d.path
        if not path.exists():
            bad.append(f"{d.path} missing")
        elif pooch.file_hash(str(path), alg="sha256") != d.sha256:
            bad.append(f"{d.path} sha256 differs")
    if bad:
        tracks = sorted({d.track for d in files})
        fetch = "; ".join(f"clipo data fetch --track {t} --dest {ctx.data_dir}" for t in tracks)
        return Result("data", False, f"{len(bad)} of {len(files)} files: {', '.join(bad[:3])}"
                      + (" ..." if len(bad) > 3 else ""), f"on the login node: {fetch}")
    return Result("data", True, f"{len(files)} released files present, sha256 verified")


def check_disk(ctx: Context) -> Result:
    sizes = {}
    for short, path in ctx.models.items():
        if Path(path).is_dir():
            sizes[short] = sum(f.stat().st_size for f in Path(path).glob("*.safetensors"))
    if len(sizes) < len(ctx.models):
        return Result("disk", None, "needs the models as local folders (see models) to size checkpoints")
    need = CHECKPOINT_BYTES_PER_WEIGHT_BYTE * max(sizes.values(), default=0) * ctx.n_runs
    where = ctx.results_dir
    while not where.exists():
        where = where.parent
    free = shutil.disk_usage(where).free
    detail = f"{free / 1e9:.0f} GB free under {where}, {ctx.n_runs} run(s) need ≈ {need / 1e9:.0f} GB"
    if free < need:
        return Result("disk", False, detail, "point results/ at larger shared storage (a symlink) or train "
                      "fewer runs at a time and delete their checkpoints/ once final/ exists")
    return Result("disk", True, detail)


def check_apptainer(ctx: Context) -> Result:
    if ctx.sdm != "apptainer":
        return Result("apptainer", None, "not checked (--sdm apptainer not given)")
    exe = shutil.which("apptainer") or shutil.which("singularity")
    if exe is None:
        return Result("apptainer", False, "apptainer not found on PATH",
                      "module load apptainer, or use --sdm conda (envs/gpu.yaml)")
    if not ctx.image.exists():
        return Result("apptainer", False, f"{ctx.image}: GPU image missing",
                      "build it (containers/README.md) or set containers: {gpu: <sif>} in the config")
    if isinstance(_gpus(ctx), str):
        return Result("apptainer", False, f"{Path(exe).name} and {ctx.image} present; no GPU here to test --nv",
                      "run clipo doctor on a GPU node")
    done = subprocess.run([exe, "exec", "--nv", str(ctx.image), "nvidia-smi", "-L"],
                          capture_output=True, text=True, timeout=300)
    if done.returncode != 0 or "GPU" not in done.stdout:
        return Result("apptainer", False, f"apptainer exec --nv {ctx.image} nvidia-smi -L failed: "
                      f"{(done.stdout + done.stderr).strip()[:200]}", "check that the cluster allows --nv")
    return Result("apptainer", True, f"{Path(exe).name} exec --nv {ctx.image}: {done.stdout.count('GPU ')} GPU(s)")


CHECKS: dict[str, Callable[[Context], Result]] = {
    "gpus": check_gpus,
    "driver": check_driver,
    "torch-cuda": check_torch_cuda,
    "versions": check_versions,
    "flash-attn-2": check_flash_attn_2,
    "flash-attn-4": check_flash_attn_4,
    "sglang-kernels": check_sglang_kernels,
    "fa2-varlen": check_fa2_varlen,
    "config": check_config,
    "models": check_models,
    "data": check_data,
    "disk": check_disk,
    "apptainer": check_apptainer,
}
GROUPS = {"packages": ("versions", "flash-attn-2", "flash-attn-4", "sglang-kernels")}


# ---------------------------------------------------------------------------------------------
# Config → context
# ---------------------------------------------------------------------------------------------
def _merge(base: dict, over: dict) -> dict:
    """Snakemake's --configfile merge: nested dicts update recursively, anything else is replaced."""
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_config(paths: list[str]) -> dict:
    """config.yaml of the working directory (if any) with each --configfile merged over it."""
    from clipo.errors import ConfigError

    config: dict = {}
    for path in ([Path("config.yaml")] if Path("config.yaml").exists() else []) + [Path(p) for p in paths]:
        if not path.exists():
            raise FileNotFoundError(f"{path}: config file not found")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: not a text file (not UTF-8); give the workflow's YAML config") from None
        except yaml.YAMLError as e:
            where = getattr(e, "problem_mark", None)
            at = f" at line {where.line + 1}, column {where.column + 1}" if where is not None else ""
            raise ConfigError(f"{path}: not valid YAML{at} ({getattr(e, 'problem', None) or e})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: not a mapping")
        config = _merge(config, data)
    return config


def context_from(args: argparse.Namespace) -> Context:
    """Tracks, models and the number of training runs from the config's grid (verl runs only)."""
    from clipo.errors import ConfigError
    from clipo.methods import get_track
    from clipo.runs import default_model

    config = load_config(args.configfile or [])
    if args.track:
        grid = [{"track": [args.track], "method": ["grpo"]}]
        models = {}
    else:
        grid = config.get("grid") or []
        models = config.get("models") or {}
    runs, tracks, used = set(), [], {}
    for i, sweep in enumerate(grid):
        for track in sweep.get("track", []):
            if track == "mini" or sweep.get("backend") == ["mini"]:
                continue
            t = get_track(track)
            tracks += [track] if track not in tracks else []
            for model in sweep.get("model", [default_model(track)]):
                if args.model_path:
                    used[model] = args.model_path
                elif model in models:
                    used[model] = models[model]
                elif args.track:
                    used[model] = t.model
                else:
                    raise ConfigError(f"config grid[{i}]: no models: entry for {model!r}")
                axes = [sweep.get(k, [d]) for k, d in (("method", "grpo"), ("clipo", "none"), ("tau", None),
                                                       ("group_size", None), ("seed", 0))]
                runs.update((track, model, *combo) for combo in itertools.product(*axes) if combo[0] != "base")
    train = (config.get("resources") or {}).get("train_verl") or {}
    data_dir = Path(args.data_dir or config.get("data_dir") or "data")
    results = Path(args.results_dir or f"results/{config.get('run_set', 'verl')}")
    image = Path(args.image or (config.get("containers") or {}).get("gpu") or "containers/clipo-gpu.sif")
    gpus = get_track(args.track).n_gpus_per_node if args.track else train.get("gpu")
    return Context(tracks, used, len(runs) or 1, gpus, data_dir, results, args.sdm, image)


def selected(only: str | None) -> list[str]:
    from clipo.errors import ConfigError

    if not only:
        return list(CHECKS)
    names = []
    for item in (x.strip() for x in only.split(",") if x.strip()):
        if item not in CHECKS and item not in GROUPS:
            raise ConfigError(f"--only {item!r}; valid: {', '.join([*CHECKS, *GROUPS])}")
        names += GROUPS.get(item, [item])
    return names


def run_checks(ctx: Context, names: list[str]) -> list[Result]:
    results = []
    for name in names:
        try:
            results.append(CHECKS[name](ctx))
        except Exception as e:  # noqa: BLE001 - a crashing probe is one failed row, not a traceback
            results.append(Result(name, False, f"{type(e).__name__}: {e}", "see the message"))
    return results


def format_table(results: list[Result]) -> str:
    width = max(len(r.name) for r in results)
    lines = []
    for r in results:
        status = {True: "PASS", False: "FAIL", None: "SKIP"}[r.ok]
        lines.append(f"{r.name:<{width}}  {status}  {r.detail}")
        if r.ok is False and r.fix:
            lines.append(f"{'':<{width}}  fix:  {r.fix}")
    failed = sum(r.ok is False for r in results)
    lines.append(f"{failed} of {len(results)} checks failed" if failed else f"all {len(results)} checks passed "
                 f"({sum(r.ok is None for r in results)} skipped)")
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    results = run_checks(context_from(args), selected(args.only))
    print(format_table(results))
    return 1 if any(r.ok is False for r in results) else 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="preflight of a GPU node before submitting verl runs (exit 1 on any failure)",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--configfile", nargs="+", help="workflow config(s), merged over ./config.yaml as Snakemake does")
    p.add_argument("--track", help="check one track instead of a config's grid (with --model-path)")
    p.add_argument("--model-path", help="local folder of the initial policy (with --track)")
    p.add_argument("--sdm", choices=("apptainer", "conda", "none"), default="none",
                   help="how Snakemake will run the rules (apptainer: also check the image and --nv)")
    p.add_argument("--image", help="GPU image (default: the config's containers.gpu)")
    p.add_argument("--data-dir", help="default: the config's data_dir")
    p.add_argument("--results-dir", help="where checkpoints go (default: results/<run_set>)")
    p.add_argument("--only", help=f"comma-separated checks or groups: {', '.join([*CHECKS, *GROUPS])}")
    p.set_defaults(handler=main)
