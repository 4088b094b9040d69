"""Hugging Face model folders: load and save a causal LM with its tokenizer, shared by both backends'
evaluators, SFT and the mini trainer (any HF folder: the mini base model or an instruct model)."""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from pathlib import Path


def load(path: str | os.PathLike, dtype=None):
    """Load ``(model, tokenizer)`` from an HF folder; one clear error if it is missing or not a model."""
    import torch
    from transformers import AutoModelForCausalLM

    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"model folder {path} does not exist (train it with `clipo sft` or give a path)")
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path} is not an HF model folder: no config.json")
    try:
        tokenizer = _load_tokenizer(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype or torch.float32,
                                                     attn_implementation="eager")
    except (OSError, ValueError) as e:
        raise FileNotFoundError(f"{path}: cannot load model/tokenizer ({e})") from e
    if tokenizer.pad_token is None:  # many instruct tokenizers ship without one
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    model.eval()
    return model, tokenizer


def _load_tokenizer(path: Path):
    """The folder's tokenizer exactly as its files define it.

    Pitfall (transformers 5): ``AutoTokenizer`` on any ``qwen2`` folder builds ``Qwen2Tokenizer``,
    which replaces the saved pre-tokenizer with Qwen's digit-by-digit split — the mini tokenizer
    would then spell "18" as "1", "8". A folder whose tokenizer_config names the generic
    ``TokenizersBackend`` class (what ``save`` writes for the mini tokenizer) is therefore loaded
    with that class; every other folder (real instruct models) goes through ``AutoTokenizer``.
    """
    from transformers import AutoTokenizer, TokenizersBackend

    config_file = path / "tokenizer_config.json"
    declared = json.loads(config_file.read_text()).get("tokenizer_class") if config_file.is_file() else None
    if declared == TokenizersBackend.__name__:
        return TokenizersBackend.from_pretrained(path)
    return AutoTokenizer.from_pretrained(path)


def save(model, tokenizer, path: str | os.PathLike, extra_files: dict[str, str] | None = None) -> Path:
    """Write model + tokenizer (+ small text files) to a temp folder beside ``path``, then rename onto it.

    A reader never sees a half-written model; an existing folder at ``path`` is replaced. A full disk is
    raised as OSError(ENOSPC) naming ``path`` (safetensors reports it as its own error type, plain writes
    without a file name).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp's private 0700 would hide the model from other users and containers
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        for name, text in (extra_files or {}).items():
            (tmp / name).write_text(text)
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old / path.name)
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        full = getattr(e, "errno", None) == errno.ENOSPC or "No space left on device" in str(e)
        if isinstance(e, Exception) and full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from e
        raise
    return path
