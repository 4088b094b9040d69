"""``clipo doctor``: every check against this (GPU-less) machine and against stand-ins for a GPU node —
a fake nvidia-smi / apptainer on PATH, model folders, data files and a distribution's RECORD in tmp_path."""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import os
import re
import stat
from pathlib import Path

import pytest

from clipo import doctor
from clipo.cli import main as cli_main

ROOT = Path(__file__).resolve().parents[1]


def _ctx(tmp_path, **kw) -> doctor.Context:
    values = dict(tracks=["small"], models={}, n_runs=1, train_gpus=1, data_dir=tmp_path / "data",
                  results_dir=tmp_path / "results", sdm="none", image=tmp_path / "gpu.sif")
    return doctor.Context(**(values | kw))


def _script(folder: Path, name: str, body: str) -> None:
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.fixture
def fake_smi(tmp_path, monkeypatch):
    """Puts an nvidia-smi on PATH that reports ``n`` GPUs with ``driver``."""

    def install(n: int, driver: str):
        lines = "\n".join(f"echo 'NVIDIA H100 80GB HBM3, {driver}, 81559'" for _ in range(n))
        _script(tmp_path / "bin", "nvidia-smi", lines)
        monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")

    return install


def test_this_machine_has_no_gpu_and_the_doctor_fails(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no config.yaml here: only the given config counts
    code = cli_main(["doctor", "--configfile", str(ROOT / "configs" / "gpu-1.yaml")])
    out = capsys.readouterr().out
    assert code == 1
    assert re.search(r"^gpus +FAIL  no GPU", out, re.M) and "fix:  run clipo doctor on a GPU node" in out
    assert "srun --nodes=1 --gpus=1" in out  # the one-GPU track's job size
    assert "checks failed" in out.splitlines()[-1]


def test_gpu_count_and_driver(tmp_path, fake_smi):
    fake_smi(8, "575.57.08")
    ctx = _ctx(tmp_path, train_gpus=8)
    assert doctor.check_gpus(ctx).ok and "8 visible" in doctor.check_gpus(ctx).detail
    driver = doctor.check_driver(ctx)
    assert driver.ok is False and "R580" in driver.fix and "575.57.08" in driver.detail
    fake_smi(4, "580.82.07")
    ctx = _ctx(tmp_path, train_gpus=8)
    assert doctor.check_driver(ctx).ok
    gpus = doctor.check_gpus(ctx)
    assert gpus.ok is False and "4 visible, a training job uses 8" in gpus.detail


def test_torch_without_cuda_fails_here(tmp_path):
    result = doctor.check_torch_cuda(_ctx(tmp_path))
    assert result.ok is False and "CUDA" in result.detail


def test_versions_compare_with_the_gpu_pins(tmp_path, monkeypatch):
    assert doctor.check_versions(_ctx(tmp_path)).ok is False  # the CPU venv: torch 2.13.0+cpu, no sglang
    monkeypatch.setattr(doctor, "_version", lambda dist: doctor.GPU_PINS[dist])
    assert doctor.check_versions(_ctx(tmp_path)).ok


def test_gpu_pins_are_the_images(tmp_path):
    locked = {}
    for path in (ROOT / "containers" / "gpu.lock", ROOT / "containers" / "flash-attn.txt"):
        for line in path.read_text().splitlines():
            if "==" in line and not line.startswith("#"):
                name, version = line.split()[0].split("==")
                locked[name] = version
    assert {d: locked[d] for d in doctor.GPU_PINS} == doctor.GPU_PINS


def test_flash_attention_2_missing_here(tmp_path):
    result = doctor.check_flash_attn_2(_ctx(tmp_path))
    assert result.ok is False and "containers/flash-attn.txt" in result.fix


def _distribution(site: Path, files: dict[str, bytes]) -> importlib.metadata.Distribution:
    """An installed distribution ``demo`` in ``site`` whose RECORD hashes ``files``."""
    from base64 import urlsafe_b64encode

    info = site / "demo-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n")
    rows = []
    for name, content in files.items():
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_bytes(content)
        digest = urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=").decode()
        rows.append(f"{name},sha256={digest},{len(content)}")
    (info / "RECORD").write_text("\n".join(rows + ["demo-1.0.dist-info/RECORD,,"]) + "\n")
    return next(importlib.metadata.distributions(path=[str(site)]))


def test_overwritten_files_of_a_distribution_are_found(tmp_path):
    dist = _distribution(tmp_path, {"flash_attn/cute/__init__.py": b"fa4", "flash_attn/cute/x.py": b"y"})
    assert doctor.changed_files(dist) == []
    (tmp_path / "flash_attn/cute/x.py").write_bytes(b"FA2's copy")  # what installing FA2 after FA4 does
    assert doctor.changed_files(dist) == ["flash_attn/cute/x.py"]


def test_config_gpus_must_match_the_tracks(tmp_path):
    assert doctor.check_config(_ctx(tmp_path, tracks=["small"], train_gpus=1)).ok
    bad = doctor.check_config(_ctx(tmp_path, tracks=["small"], train_gpus=8))
    assert bad.ok is False and "gpu: 1" in bad.fix
    assert doctor.check_config(_ctx(tmp_path, tracks=["I", "small"], train_gpus=8)).ok is False


def test_models_must_be_complete_local_folders(tmp_path):
    folder = tmp_path / "qwen"
    folder.mkdir()
    ctx = _ctx(tmp_path, models={"qwen2.5-1.5b-instruct": str(folder)})
    result = doctor.check_models(ctx)
    assert result.ok is False and "config.json" in result.detail and "*.safetensors" in result.detail
    for name in ("config.json", "tokenizer.json", "model.safetensors"):
        (folder / name).write_text("{}")
    assert doctor.check_models(ctx).ok
    hub = doctor.check_models(_ctx(tmp_path, models={"qwen2.5-1.5b-instruct": "Qwen/Qwen2.5-1.5B-Instruct"}))
    assert hub.ok is False and "huggingface-cli download Qwen/Qwen2.5-1.5B-Instruct" in hub.fix


def test_data_presence_and_checksums(tmp_path, monkeypatch):
    from clipo.data.registry import DatasetFile

    content = b"released bytes"
    entry = DatasetFile("x", "train/x.parquet", "I", "train", 1, hashlib.sha256(content).hexdigest())
    monkeypatch.setattr(doctor, "data_files", lambda tracks: [entry])
    ctx = _ctx(tmp_path)
    missing = doctor.check_data(ctx)
    assert missing.ok is False and "missing" in missing.detail and "clipo data fetch --track I" in missing.fix
    (tmp_path / "data" / "train").mkdir(parents=True)
    (tmp_path / "data" / "train" / "x.parquet").write_bytes(b"other bytes")
    assert "sha256 differs" in doctor.check_data(ctx).detail
    (tmp_path / "data" / "train" / "x.parquet").write_bytes(content)
    assert doctor.check_data(ctx).ok
    assert {d.track for d in doctor.data_files(["small"])} == {"I"}  # the small track uses Track I's files


def test_disk_room_scales_with_runs_and_model_size(tmp_path, monkeypatch):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"\0" * 1000)
    monkeypatch.setattr(doctor.shutil, "disk_usage", lambda p: argparse.Namespace(free=100_000))
    ctx = _ctx(tmp_path, models={"m": str(folder)}, n_runs=5)
    assert doctor.check_disk(ctx).ok  # 18 × 1000 B × 5 runs = 90 kB
    ctx.n_runs = 6
    assert doctor.check_disk(ctx).ok is False
    assert doctor.check_disk(_ctx(tmp_path, models={"m": "Org/hub-id"})).ok is None


def test_apptainer_needs_the_binary_the_image_and_gpus(tmp_path, monkeypatch, fake_smi):
    assert doctor.check_apptainer(_ctx(tmp_path)).ok is None  # not using apptainer
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert "not found" in doctor.check_apptainer(_ctx(tmp_path, sdm="apptainer")).detail
    fake_smi(1, "580.82.07")
    _script(tmp_path / "bin", "apptainer", 'test "$2" = --nv && echo "GPU 0: NVIDIA H100 (UUID: x)"')
    ctx = _ctx(tmp_path, sdm="apptainer")
    assert "GPU image missing" in doctor.check_apptainer(ctx).detail
    ctx.image.write_text("sif")
    assert doctor.check_apptainer(ctx).ok
    _script(tmp_path / "bin", "apptainer", 'echo "no --nv"; exit 1')
    assert doctor.check_apptainer(_ctx(tmp_path, sdm="apptainer")).ok is False


def test_context_counts_the_configs_training_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    args = argparse.Namespace(configfile=[str(ROOT / "configs" / "gpu-1.yaml")], track=None, model_path=None,
                              data_dir=None, results_dir=None, image=None, sdm="none")
    ctx = doctor.context_from(args)
    assert (ctx.tracks, ctx.n_runs, ctx.train_gpus) == (["small"], 6, 1)
    assert ctx.models == {"qwen2.5-1.5b-instruct": "Qwen/Qwen2.5-1.5B-Instruct"}
    assert ctx.results_dir == Path("results/gpu-1")
    args.configfile = [str(ROOT / "configs" / "paper.yaml")]
    paper = doctor.context_from(args)
    assert set(paper.tracks) == {"I", "II"} and paper.train_gpus == 8 and paper.n_runs > 40


def test_unknown_check_names_are_rejected(capsys):
    assert cli_main(["doctor", "--only", "gpus,typo"]) == 2
    assert "--only 'typo'" in capsys.readouterr().err
    assert doctor.selected("packages") == ["versions", "flash-attn-2", "flash-attn-4", "sglang-kernels"]
