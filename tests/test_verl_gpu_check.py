"""The prepared GPU script runs on CPU too: checks pass, can fail, and it needs neither verl nor SGLang."""

import json
import subprocess
import sys

from clipo.verl import gpu_check


def test_gpu_check_runs_on_cpu_and_reports_one_line_per_check(tmp_path, capsys):
    out = tmp_path / "gpu_check.json"
    argv = ["--device", "cpu", "--batch", "256", "--hidden", "64", "--dim", "32", "--repeats", "1",
            "--no-real-widths", "--out", str(out)]
    code = gpu_check.main(argv)
    report = json.loads(out.read_text())
    assert code == 0 and report["passed"] and report["device"] == "cpu"
    assert set(report["checks"]) >= {
        "hook_vs_hf_shift0",
        "hook_vs_hf_shift1",
        "hook_device_vs_cpu",
        "supcon_reward_device_vs_cpu",
        "softnn_head_weights_device_vs_cpu",
        "infonce_reward_in_range",
    }
    assert all(c["passed"] and c["value"] <= c["limit"] for c in report["checks"].values())
    timing = report["timing"]["contrastive_custom"]
    assert timing["batch"] == 256 and timing["reward_ms"] > 0
    lines = capsys.readouterr().out.splitlines()
    for name in report["checks"]:
        assert sum(line.startswith(name + " ") and " PASS " in line for line in lines) == 1, name
    assert lines[-1] == "all checks passed"


def test_hook_check_detects_a_misaligned_pool():
    model, batch = gpu_check.tiny_qwen2(), gpu_check.packed_batch(n=4)
    right = gpu_check.reference_states(model, batch, "cpu", shift=0)
    assert (gpu_check.hook_states(model, batch, "cpu", shift=0) - right).abs().max() <= gpu_check.TOLERANCE
    assert (gpu_check.hook_states(model, batch, "cpu", shift=1) - right).abs().max() > 1e-2


def test_bf16_hook_check_at_a_wider_model():
    """The real-width check's path (bf16, 4096-token vocabulary), at a width CPUs run in seconds."""
    widths = dict(hidden_size=256, intermediate_size=512, num_attention_heads=4, num_key_value_heads=2)
    assert gpu_check.bf16_hook_error("cpu", widths) <= gpu_check.BF16_TOLERANCE
    assert set(gpu_check.REAL_WIDTHS) == {"qwen2.5-3b", "qwen2.5-7b"}
    timing = gpu_check.time_hook("cpu", widths, repeats=1)
    assert timing["forward_ms"] > 0 and timing["forward_with_hook_ms"] > 0


def test_a_failed_check_fails_the_run(monkeypatch, capsys):
    monkeypatch.setattr(gpu_check, "TOLERANCE", -1.0)  # nothing can be that close
    argv = ["--device", "cpu", "--batch", "64", "--hidden", "32", "--dim", "16", "--repeats", "1",
            "--no-real-widths"]
    assert gpu_check.main(argv) == 1
    out = capsys.readouterr().out
    assert "hook_vs_hf_shift0" in out and " FAIL " in out and out.rstrip().endswith("SOME CHECKS FAILED")


def test_script_imports_without_verl():
    code = (
        "import sys, clipo.verl.gpu_check; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('verl', 'sglang', 'ray', 'transfer_queue')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
