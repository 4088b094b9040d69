"""``clipo doctor``'s FlashAttention-2 import and varlen kernel, and SGLang's kernel packages, on CPU: the
package metadata, the importer and the GPU are stand-ins (monkeypatched), as on a GPU node they are real."""

from __future__ import annotations

import math

import pytest

from clipo import doctor
from test_doctor import _ctx

SGLANG_REQUIRES = [
    "aiohttp",
    "sglang-kernel==0.4.2.post2",
    "flashinfer_python==0.6.11.post1",  # SGLang spells it with an underscore
    'pytest; extra == "test"',
]
"""The Requires-Dist lines of SGLang 0.5.12 that matter here (its kernel pins)."""


@pytest.fixture
def node(monkeypatch):
    """A stand-in GPU node: installed versions, SGLang's requirements, whether CUDA works, what imports."""
    state = {
        "versions": dict(doctor.GPU_PINS),
        "requires": list(SGLANG_REQUIRES),
        "cuda": False,
        "broken": {},
        "imported": [],
    }

    def fake_import(module):
        state["imported"].append(module)
        if module in state["broken"]:
            raise state["broken"][module]

    monkeypatch.setattr(doctor, "_version", lambda dist: state["versions"].get(dist))
    monkeypatch.setattr(doctor, "_requires", lambda dist: state["requires"] if dist in state["versions"] else None)
    monkeypatch.setattr(doctor, "_cuda_available", lambda: state["cuda"])
    monkeypatch.setattr(doctor, "_import", fake_import)
    monkeypatch.setattr(doctor.importlib.util, "find_spec", lambda name: object())
    return state


def test_sglang_kernels_at_sglangs_pins_pass_and_skip_the_import_without_gpu(tmp_path, node):
    result = doctor.check_sglang_kernels(_ctx(tmp_path))
    assert result.ok is True and "import skipped: no GPU" in result.detail
    assert "sglang-kernel 0.4.2.post2" in result.detail and node["imported"] == []


def test_sglang_kernel_of_another_version_fails_with_the_pin_to_install(tmp_path, node):
    node["versions"]["sglang-kernel"] = "0.4.1"
    result = doctor.check_sglang_kernels(_ctx(tmp_path))
    assert result.ok is False and "sglang-kernel 0.4.1 (sglang needs ==0.4.2.post2)" in result.detail
    assert "sglang-kernel==0.4.2.post2 flashinfer-python==0.6.11.post1" in result.fix


def test_pins_that_differ_from_sglangs_own_requirement_fail(tmp_path, node):
    """GPU_PINS is checked against SGLang's metadata, so a stale pin cannot pass as 'installed as pinned'."""
    node["requires"] = ["sglang-kernel==0.4.3", "flashinfer_python==0.6.11.post1"]
    node["versions"]["sglang-kernel"] = "0.4.3"
    result = doctor.check_sglang_kernels(_ctx(tmp_path))
    assert result.ok is False and "needs sglang-kernel==0.4.3, the image pins 0.4.2.post2" in result.detail


@pytest.mark.parametrize("missing, message", [("sglang", "sglang is not installed"),
                                              ("flashinfer-python", "flashinfer-python missing")])
def test_missing_packages_fail(tmp_path, node, missing, message):
    del node["versions"][missing]
    result = doctor.check_sglang_kernels(_ctx(tmp_path))
    assert result.ok is False and message in result.detail


def test_on_a_gpu_node_the_kernel_modules_must_import(tmp_path, node):
    node["cuda"] = True
    assert doctor.check_sglang_kernels(_ctx(tmp_path)).ok is True
    assert node["imported"] == ["sgl_kernel", "flashinfer"]
    node["broken"]["sgl_kernel"] = ImportError("libcudart.so.12: cannot open shared object file")
    result = doctor.check_sglang_kernels(_ctx(tmp_path))
    assert result.ok is False
    assert "import sgl_kernel (sglang-kernel) failed: ImportError: libcudart.so.12" in result.detail


def test_flash_attention_2_must_import_not_only_be_found(tmp_path, node):
    assert doctor.check_flash_attn_2(_ctx(tmp_path)).ok is True and node["imported"] == ["flash_attn"]
    node["broken"]["flash_attn"] = ImportError("flash_attn_2_cuda.so: undefined symbol: _ZN3c104cuda9SetDevice")
    result = doctor.check_flash_attn_2(_ctx(tmp_path))
    assert result.ok is False and "import flash_attn failed: ImportError: " in result.detail
    assert "compiled against a different torch" in result.fix


def test_varlen_kernel_is_skipped_clearly_without_gpu(tmp_path, node, monkeypatch):
    monkeypatch.setattr(doctor, "fa2_varlen_error", lambda: pytest.fail("the kernel must not run without a GPU"))
    result = doctor.check_fa2_varlen(_ctx(tmp_path))
    assert result.ok is None and result.detail.startswith("skipped: no CUDA GPU")
    assert "fa2-varlen  SKIP  skipped: no CUDA GPU" in doctor.format_table([result, doctor.Result("gpus", True, "")])


@pytest.mark.parametrize("outcome, ok, text", [
    (0.004, True, "matches PyTorch's attention (max diff 0.004)"),
    (0.5, False, "differs from PyTorch's attention by 0.5"),
    (math.nan, False, "differs from PyTorch's attention by nan"),
    (RuntimeError("CUDA error: no kernel image is available for execution on the device"), False,
     "flash_attn_varlen_func on cuda:0 failed: RuntimeError: CUDA error: no kernel image"),
])
def test_varlen_kernel_on_a_gpu_node(tmp_path, node, monkeypatch, outcome, ok, text):
    node["cuda"] = True

    def probe():
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    monkeypatch.setattr(doctor, "fa2_varlen_error", probe)
    result = doctor.check_fa2_varlen(_ctx(tmp_path))
    assert result.ok is ok and text in result.detail
    assert ok or "FLASH_ATTN_CUDA_ARCHS" in result.fix


def test_the_varlen_probe_compares_with_pytorch_attention_per_sequence(monkeypatch):
    """The probe itself on CPU: a stand-in kernel that attends across the two packed sequences is caught."""
    import sys
    import types

    import torch
    import torch.nn.functional as F

    def leaky_kernel(q, k, v, cu_q, cu_k, max_q, max_k, causal):  # one causal attention over the whole pack
        return F.scaled_dot_product_attention(*(x.transpose(0, 1).float() for x in (q, k, v)),
                                              is_causal=causal).transpose(0, 1)

    def correct_kernel(q, k, v, cu_q, cu_k, max_q, max_k, causal):
        bounds = cu_q.tolist()
        parts = [leaky_kernel(q[a:b], k[a:b], v[a:b], None, None, 0, 0, causal) for a, b in zip(bounds, bounds[1:])]
        return torch.cat(parts)

    for kernel, expect_small in ((correct_kernel, True), (leaky_kernel, False)):
        monkeypatch.setitem(sys.modules, "flash_attn", types.SimpleNamespace(flash_attn_varlen_func=kernel))
        error = doctor.fa2_varlen_error(device="cpu")
        assert (error <= doctor.FA2_TOLERANCE) is expect_small, error
