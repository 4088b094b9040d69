"""The prepared GPU script runs on CPU too: checks pass, can fail, and it needs neither verl nor SGLang."""

import json
import subprocess
import sys

from clipo.verl import gpu_check


def test_gpu_check_runs_on_cpu_and_reports(tmp_path):
    out = tmp_path / "gpu_check.json"
    code = gpu_check.main(
        [
            "--device",
            "cpu",
            "--batch",
            "256",
            "--hidden",
            "64",
            "--dim",
            "32",
            "--repeats",
            "1",
            "--out",
            str(out),
        ]
    )
    report = json.loads(out.read_text())
    assert code == 0 and report["passed"] and report["device"] == "cpu"
    assert set(report["checks"]) >= {
        "hook_vs_hf_shift0",
        "hook_vs_hf_shift1",
        "hook_device_vs_cpu",
        "supcon_reward_device_vs_cpu",
        "softnn_head_weights_device_vs_cpu",
    }
    assert max(report["checks"].values()) <= gpu_check.TOLERANCE
    assert report["timing"]["batch"] == 256 and report["timing"]["reward_ms"] > 0


def test_hook_check_detects_a_misaligned_pool():
    model, batch = gpu_check.tiny_qwen2(), gpu_check.packed_batch(n=4)
    right = gpu_check.reference_states(model, batch, "cpu", shift=0)
    assert (gpu_check.hook_states(model, batch, "cpu", shift=0) - right).abs().max() <= gpu_check.TOLERANCE
    assert (gpu_check.hook_states(model, batch, "cpu", shift=1) - right).abs().max() > 1e-2


def test_script_imports_without_verl():
    code = (
        "import sys, clipo.verl.gpu_check; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('verl', 'sglang', 'ray', 'transfer_queue')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
