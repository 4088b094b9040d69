"""`clipo evaluate`: Pass@1 of any HF causal-LM folder on every evaluation file of a run's track.

n samples per problem (greedy when sampling is off, which needs n = 1), each scored by
``clipo.rewards.compute_score``; Pass@1 of a benchmark = mean correctness over all its samples.
Writes the tidy results format (clipo.scores): ``samples.parquet`` (one row per sample, so
confidence intervals can be computed) and ``scores.csv`` (one row per benchmark). Scoring and
aggregation are separate from generation (``score_samples``, ``aggregate``) so they are testable —
and reusable by a GPU generator — without a model.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from clipo.data.stepcheck import classify, count_labels
from clipo.errors import ConfigError
from clipo.methods import get_track
from clipo.runs import RunSpec
from clipo.scores import LUCKY_SHARE, PASS_AT_1, SAMPLE_COLUMNS, SOUND_PASS_AT_1


@dataclass(frozen=True)
class Sampling:
    """How responses are drawn at evaluation (defaults: the track's val_* settings, paper Table 8)."""

    n: int
    do_sample: bool
    temperature: float
    top_p: float
    max_new_tokens: int

    def __post_init__(self):
        if self.n < 1:
            raise ConfigError(f"evaluate: --n={self.n} must be >= 1")
        if self.max_new_tokens < 1:
            raise ConfigError(f"evaluate: --max-new-tokens={self.max_new_tokens} must be >= 1")
        if self.do_sample and not self.temperature > 0:
            raise ConfigError(f"evaluate: sampling needs --temperature > 0, got {self.temperature}")
        if not self.do_sample and self.n > 1:
            raise ConfigError(f"evaluate: --n={self.n} with greedy decoding gives identical samples; "
                              "use --n 1 or --do-sample")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"evaluate: --top-p={self.top_p} must be in (0, 1]")


def sampling_for(track: str, n=None, do_sample=None, temperature=None, top_p=None, max_new_tokens=None):
    """The track's evaluation protocol with any given overrides; temperature 0 means greedy."""
    t = get_track(track)
    temperature = t.val_temperature if temperature is None else temperature
    if do_sample is None:
        do_sample = t.val_do_sample and temperature > 0
    return Sampling(n=t.val_n if n is None else n, do_sample=do_sample, temperature=temperature,
                    top_p=t.val_top_p if top_p is None else top_p,
                    max_new_tokens=t.max_response_length if max_new_tokens is None else max_new_tokens)


def protocol_for(dataset, sampling: Sampling) -> Sampling:
    """The run's protocol, or for a sampled view of a file (registry ``temperature`` set) its own draws."""
    if dataset.temperature is None:
        return sampling
    return replace(sampling, n=dataset.n_samples, do_sample=True, temperature=dataset.temperature, top_p=1.0)


def score_samples(run_id: str, benchmark: str, problems: pd.DataFrame, responses: Sequence[Sequence[str]]
                  ) -> pd.DataFrame:
    """Per-sample records (SAMPLE_COLUMNS) for ``responses[i][k]`` = sample k of problem row i.

    Problem ids are row positions in the evaluation file, stable across runs of the same file, so
    runs can be paired problem by problem.
    """
    from clipo.rewards import compute_score, extract_answer

    if len(responses) != len(problems):
        raise ValueError(f"{benchmark}: {len(responses)} response lists for {len(problems)} problems")
    rows = []
    for problem_id, (source, reward_model, extra, samples) in enumerate(zip(
            problems["data_source"], problems["reward_model"], problems["extra_info"], responses, strict=True)):
        truth = reward_model["ground_truth"]
        for sample_id, text in enumerate(samples):
            correct = compute_score(source, text, truth, dict(extra)) >= 1.0
            rows.append({
                "run_id": run_id, "benchmark": benchmark, "problem_id": problem_id, "sample_id": sample_id,
                "response": text, "extracted_answer": extract_answer(source, text), "correct": correct,
                "process": classify(extra, text, correct),  # measured only: the reward above is the outcome's
            })
    return pd.DataFrame(rows, columns=list(SAMPLE_COLUMNS))


def aggregate(samples: pd.DataFrame, spec: RunSpec, source: str) -> pd.DataFrame:
    """One SCORE_COLUMNS row per benchmark: Pass@1 in % = mean correctness over every sample."""
    rows = []
    for benchmark, group in samples.groupby("benchmark", sort=False):
        per_problem = group.groupby("problem_id")["sample_id"].count()
        if per_problem.nunique() != 1:
            raise ValueError(f"{benchmark}: problems have different numbers of samples {sorted(per_problem.unique())}")
        rows.append({
            "source": source, "track": spec.track, "model": spec.model, "method": spec.method,
            "clipo": spec.clipo, "tau": spec.tau, "group_size": spec.group_size, "seed": spec.seed,
            "benchmark": benchmark, "score": 100.0 * group["correct"].astype(float).mean(),
            "n_problems": len(per_problem), "n_samples": int(per_problem.iloc[0]),
        })
    return pd.DataFrame(rows)


def with_process_metrics(scores: pd.DataFrame, samples: pd.DataFrame) -> pd.DataFrame:
    """``aggregate``'s Pass@1 rows plus, for each benchmark whose every sample was step-checked, two rows
    of its own (``metric``, clipo.scores): sound Pass@1 and the lucky share of correct answers, in %.

    Measured, never rewarded. With no such benchmark the table is returned as it was (no ``metric`` column).
    """
    extra = []
    for row in scores.to_dict("records"):
        labels = samples.loc[samples["benchmark"] == row["benchmark"], "process"]
        if len(labels) and labels.notna().all():
            counts = count_labels(labels)
            lucky = counts.lucky_share
            extra += [{**row, "metric": SOUND_PASS_AT_1, "score": 100.0 * counts.sound_share},
                      {**row, "metric": LUCKY_SHARE, "score": math.nan if lucky is None else 100.0 * lucky}]
    if not extra:
        return scores
    return pd.concat([scores.assign(metric=PASS_AT_1), pd.DataFrame(extra)], ignore_index=True)


def generate_responses(model, tokenizer, prompts: Sequence, sampling: Sampling, batch_size: int,
                       seed: int = 0, progress=None) -> list[list[str]]:
    """``sampling.n`` responses per prompt, generated ``batch_size`` sequences at a time.

    Prompts are batched in order of their token length, so a batch pads (and caches) little: decoding
    reads every cached position at every step, and padding made up a third of the prompt tokens.
    Each batch samples from its own stream seeded by (seed, position in that order), so a rerun
    reproduces every response; sampled (not greedy) responses change if the batch size changes.
    """
    from clipo.generation import decode_responses, encode_prompts, generate, render_prompt

    lengths = [len(ids) for ids in tokenizer([render_prompt(tokenizer, p) for p in prompts],
                                             add_special_tokens=False)["input_ids"]]
    order = sorted(range(len(prompts)), key=lengths.__getitem__)
    per_batch = max(1, batch_size // sampling.n)  # prompts per batch; each is encoded once for its n samples
    responses: list[list[str]] = [[] for _ in prompts]
    for start in range(0, len(order), per_batch):
        chunk = order[start:start + per_batch]
        input_ids, attention_mask = encode_prompts(tokenizer, [prompts[i] for i in chunk])
        ids, mask = generate(model, tokenizer, input_ids.to(model.device), attention_mask.to(model.device),
                             max_new_tokens=sampling.max_new_tokens, do_sample=sampling.do_sample,
                             temperature=sampling.temperature, top_p=sampling.top_p,
                             seed=seed * 1_000_003 + start * sampling.n, repeats=sampling.n)
        texts = decode_responses(tokenizer, ids.cpu(), mask.cpu())
        for k, i in enumerate(chunk):
            responses[i] = texts[k * sampling.n:(k + 1) * sampling.n]
        if progress is not None:
            progress.update(len(chunk) * sampling.n)
    return responses


def evaluate(model_path: str | os.PathLike, run_id: str, source: str, data_dir: str | os.PathLike,
             out: str | os.PathLike, sampling: Sampling | None = None, limit: int | None = None,
             batch_size: int = 256, benchmarks: Sequence[str] | None = None, seed: int = 0,
             device: str | None = None, progress: bool = True) -> pd.DataFrame:
    """Evaluate one model folder on its run's track; writes ``out``/samples.parquet and scores.csv."""
    from clipo.data.registry import by_benchmark, eval_files
    from clipo.data.schema import load_dataset
    from clipo.generation import check_datasets_fit
    from clipo.hf import load
    from clipo.lock import run_folder_lock
    from clipo.progress import progress as progress_bar
    from clipo.scores import write_samples, write_scores

    spec = RunSpec.parse(run_id)
    sampling = sampling or sampling_for(spec.track)
    if limit is not None and limit < 1:
        raise ConfigError(f"evaluate: --limit={limit} must be >= 1")
    if batch_size < 1:
        raise ConfigError(f"evaluate: --batch-size={batch_size} must be >= 1")
    files = [by_benchmark(spec.track, b) for b in benchmarks] if benchmarks else eval_files(spec.track)
    datasets = {}
    for f in files:  # validate every file before spending time on generation
        df = load_dataset(Path(data_dir) / f.path)
        datasets[f.benchmark] = df.iloc[:limit] if limit else df
    device = torch_device(device)
    model, tokenizer = load(model_path)
    model.to(device)

    protocols = {f.benchmark: protocol_for(f, sampling) for f in files}
    check_datasets_fit(tokenizer, getattr(model.config, "max_position_embeddings", None),
                       {b: p.max_new_tokens for b, p in protocols.items()}, datasets,
                       {f.benchmark: str(Path(data_dir) / f.path) for f in files}, str(model_path))
    total = sum(len(datasets[b]) * protocols[b].n for b in datasets)
    # One evaluation per folder: two into one --out could pair one's scores.csv with the other's samples.
    with run_folder_lock(out, activity="evaluated"):
        bar = progress_bar(total=total, desc=f"evaluate {spec.method}/{spec.clipo}", unit="sample",
                           disable=not progress)
        parts = []
        for benchmark, df in datasets.items():
            bar.set_postfix(benchmark=benchmark)
            prompts = [[{"role": m["role"], "content": m["content"]} for m in p] for p in df["prompt"]]
            responses = generate_responses(model, tokenizer, prompts, protocols[benchmark], batch_size,
                                           seed=seed, progress=bar)
            parts.append(score_samples(run_id, benchmark, df, responses))
        bar.close()
        samples = pd.concat(parts, ignore_index=True)
        scores = aggregate(samples, spec, source)
        out = Path(out)
        write_samples(samples, out / "samples.parquet")
        write_scores(with_process_metrics(scores, samples), out / "scores.csv")
    return scores


def torch_device(name: str | None):
    """The ``--device`` to evaluate on (default: cuda if available, else cpu), checked to be usable here."""
    import torch

    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
        torch.empty(1, device=device)
    except (RuntimeError, AssertionError) as e:  # unknown type; a CUDA device on a machine without one
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"evaluate: --device {name!r} cannot be used here ({first}); "
                          "leave --device out to use cuda when available, else cpu") from None
    return device


def main(args: argparse.Namespace) -> int:
    """Handler of ``clipo evaluate --backend mini`` (registered in clipo.commands)."""
    spec = RunSpec.parse(args.run_id)
    sampling = sampling_for(spec.track, n=args.n, do_sample=args.do_sample, temperature=args.temperature,
                            top_p=args.top_p, max_new_tokens=args.max_new_tokens)
    benchmarks = [b.strip() for b in args.benchmarks.split(",") if b.strip()] if args.benchmarks else None
    scores = evaluate(args.model, args.run_id, args.source, args.data_dir, args.out, sampling=sampling,
                      limit=args.limit, batch_size=args.batch_size, benchmarks=benchmarks, seed=args.seed,
                      device=args.device)
    for row in scores.itertuples():
        print(f"{row.benchmark:>8}: {row.score:6.2f}%  ({row.n_problems} problems × {row.n_samples})")
    return 0
