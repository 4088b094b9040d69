"""GPU evaluation with SGLang's offline engine, writing the same records as the mini evaluator.

``clipo evaluate --backend verl --model RUNSET/runs/<run_id>/final --run-id <run_id> --source RUNSET
--data-dir data --out RUNSET/eval/<run_id> [--tp-size 1] [--dp-size 8]`` — the flags of the mini evaluator
(except ``--device``) plus the engine's parallelism.

Why SGLang's offline engine (``sglang.Engine``) and not verl's validation dumps:
- it evaluates any HF folder, including the base-model pseudo-run that never trains;
- every sample keeps its problem id (the row of the evaluation file), which paired bootstrap CIs need;
  verl's validation shuffles, filters overlong prompts and dumps text without stable ids;
- prompts, scoring and aggregation are the mini evaluator's own functions (``clipo.evaluate``:
  ``sampling_for``, ``score_samples``, ``aggregate``), so samples.parquet and scores.csv cannot differ in
  format between backends; SGLang is also the rollout engine of training, with the paper's
  ``val_kwargs`` (Table 8: n 1/16, greedy/sampling, T 0.6, top-p 0.95) as defaults.
Prompts are rendered with the model's chat template exactly as verl's RL dataset does
(``apply_chat_template(..., add_generation_prompt=True)``) and tokenized here once, without added special
tokens, and SGLang gets the token ids: handed text, SGLang would tokenize it with special tokens added, so
templates that already start with the BOS token (DeepSeek-R1-Distill-Qwen, Llama-3.1) would begin with two.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from clipo.errors import ConfigError, UserError
from clipo.evaluate import Sampling, aggregate, sampling_for, score_samples
from clipo.runs import RunSpec


def engine_sampling_params(sampling: Sampling) -> dict:
    """SGLang sampling parameters of one request; greedy decoding is temperature 0 (top-p then unused)."""
    if sampling.do_sample:
        return {
            "max_new_tokens": sampling.max_new_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
        }
    return {"max_new_tokens": sampling.max_new_tokens, "temperature": 0.0, "top_p": 1.0}


def build_prompts(tokenizer, problems: pd.DataFrame) -> list[list[int]]:
    """Token ids of every problem: the file's chat messages through the model's chat template, tokenized
    without added special tokens (the template holds any BOS, as in training and the CPU evaluator)."""
    from clipo.generation import render_prompt

    texts = [
        render_prompt(tokenizer, [{"role": m["role"], "content": m["content"]} for m in p])
        for p in problems["prompt"]
    ]
    return tokenizer(texts, add_special_tokens=False)["input_ids"]


def expand(prompts: Sequence, n: int) -> list:
    """n copies of each prompt, problem-major (sample k of problem i is entry i·n + k)."""
    return [p for p in prompts for _ in range(n)]


def regroup(outputs: Sequence[dict], n: int) -> list[list[str]]:
    """SGLang outputs (dicts with "text") back to one list of n responses per problem."""
    if len(outputs) % n:
        raise ValueError(f"{len(outputs)} outputs are not a multiple of n={n}")
    texts = [o["text"] for o in outputs]
    return [texts[i : i + n] for i in range(0, len(texts), n)]


def generate(
    engine, prompts: Sequence[list[int]], sampling: Sampling, batch_size: int, progress=None
) -> list[list[str]]:
    """n responses per prompt (token ids), submitted to the engine ``batch_size`` requests at a time."""
    flat, params, outputs = expand(prompts, sampling.n), engine_sampling_params(sampling), []
    for start in range(0, len(flat), batch_size):
        chunk = flat[start : start + batch_size]
        outputs += engine.generate(input_ids=chunk, sampling_params=params)
        if progress is not None:
            progress.update(len(chunk))
    return regroup(outputs, sampling.n)


def evaluate(
    model_path: str,
    run_id: str,
    source: str,
    data_dir: str,
    out: str,
    sampling: Sampling | None = None,
    limit: int | None = None,
    benchmarks: Sequence[str] | None = None,
    batch_size: int = 1024,
    tp_size: int = 1,
    dp_size: int = 1,
    seed: int = 0,
    mem_fraction: float = 0.85,
) -> pd.DataFrame:
    """Evaluate on the benchmarks of the run's track; writes ``out``/samples.parquet and scores.csv."""
    try:
        import sglang
    except ImportError as e:
        raise UserError(f"evaluating verl run {run_id} needs SGLang, which this environment lacks ({e}); run "
                        "it in the GPU image or environment (docs/gpu.md), where `python -c 'import sglang'` "
                        "works") from None
    from transformers import AutoConfig, AutoTokenizer

    from clipo.data.registry import by_benchmark, eval_files
    from clipo.data.schema import load_dataset
    from clipo.generation import check_datasets_fit
    from clipo.lock import run_folder_lock
    from clipo.progress import progress
    from clipo.scores import write_samples, write_scores

    spec = RunSpec.parse(run_id)
    if spec.track == "mini":
        raise ConfigError("track 'mini' is evaluated on CPU with `clipo evaluate`")
    if batch_size < 1 or (limit is not None and limit < 1):
        raise ConfigError(f"evaluate: --batch-size={batch_size} and --limit={limit} must be >= 1")
    sampling = sampling or sampling_for(spec.track)
    files = [by_benchmark(spec.track, b) for b in benchmarks] if benchmarks else eval_files(spec.track)
    datasets = {}
    for f in files:  # validate every file before the engine takes the GPUs
        df = load_dataset(Path(data_dir) / f.path)
        datasets[f.benchmark] = df.iloc[:limit] if limit else df
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    check_datasets_fit(tokenizer, getattr(AutoConfig.from_pretrained(model_path), "max_position_embeddings", None),
                       dict.fromkeys(datasets, sampling.max_new_tokens), datasets,
                       {f.benchmark: str(Path(data_dir) / f.path) for f in files}, model_path)
    # One evaluation per folder: two into one --out could pair one's scores.csv with the other's samples.
    with run_folder_lock(out, activity="evaluated"):
        engine = sglang.Engine(
            model_path=model_path,
            tp_size=tp_size,
            dp_size=dp_size,
            random_seed=seed,
            mem_fraction_static=mem_fraction,
        )
        bar = progress(total=sum(len(df) for df in datasets.values()) * sampling.n, desc=f"evaluate {run_id}",
                       unit="sample")
        try:
            parts = []
            for benchmark, df in datasets.items():
                bar.set_postfix(benchmark=benchmark)
                responses = generate(engine, build_prompts(tokenizer, df), sampling, batch_size, progress=bar)
                parts.append(score_samples(run_id, benchmark, df, responses))
        finally:
            bar.close()
            engine.shutdown()
        samples = pd.concat(parts, ignore_index=True)
        scores = aggregate(samples, spec, source)
        write_samples(samples, Path(out) / "samples.parquet")
        write_scores(scores, Path(out) / "scores.csv")
    return scores


def main(args: argparse.Namespace) -> int:
    """Handler of ``clipo evaluate --backend verl`` (registered in clipo.commands)."""
    spec = RunSpec.parse(args.run_id)
    sampling = sampling_for(
        spec.track,
        n=args.n,
        do_sample=args.do_sample,
        temperature=args.temperature,
        top_p=args.top_p,
        max_new_tokens=args.max_new_tokens,
    )
    benchmarks = [b.strip() for b in args.benchmarks.split(",") if b.strip()] if args.benchmarks else None
    scores = evaluate(
        args.model,
        args.run_id,
        args.source,
        args.data_dir,
        args.out,
        sampling=sampling,
        limit=args.limit,
        benchmarks=benchmarks,
        batch_size=args.batch_size,
        tp_size=args.tp_size,
        dp_size=args.dp_size,
        seed=args.seed,
        mem_fraction=args.mem_fraction,
    )
    for row in scores.itertuples():
        print(f"{row.benchmark:>8}: {row.score:6.2f}%  ({row.n_problems} problems × {row.n_samples})")
    return 0

