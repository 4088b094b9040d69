# Config → runs and paths (the grid expansion is clipo.runs.expand_grid); rules stay thin `clipo` calls.
import os
import sys
from pathlib import Path

from clipo.analysis.coverage import check_grid
from clipo.analysis.registry import FIGURES as FIGURE_REGISTRY, TABLES as TABLE_REGISTRY, table_label
from clipo.analysis.vocab import default_steps_text
from clipo.data.registry import MINI, eval_paths, get_dataset, validation_file
from clipo.methods import get_track
from clipo.runs import RunSpec, expand_grid, format_tau

# Rules call the `clipo` installed beside this Snakemake (e.g. .venv/bin), also when the venv is not
# activated; a conda env or container activated by --sdm puts its own bin/ in front of this.
envvars:
    "PATH",


os.environ["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), os.getenv("PATH", "")])

LOG_HEADER = 'echo "slurm_job_id=${{SLURM_JOB_ID:-}} host=$(hostname)" > {log:q}; '
"""Start of every rule's shell: the log opens with `slurm_job_id=$SLURM_JOB_ID host=...` (empty id when
run locally), so a cluster run can be audited from the logs alone.

Every value in a rule's shell is written `{...:q}`: config strings (data_dir, fetch_from, models: paths)
reach the command line, and quoting keeps `my data` one argument and `$(...)` text. Multi-word params are
lists of words, which `:q` quotes one by one."""

RUN_SET = config["run_set"]
DATA = config["data_dir"].rstrip("/")
RESULTS = f"results/{RUN_SET}"
LOGS = f"{RESULTS}/logs"
BENCH = f"{RESULTS}/benchmarks"
RES = config["resources"]
CONTAINERS = config["containers"]
CPU_ENV = "../../envs/cpu.yaml"
GPU_ENV = "../../envs/gpu.yaml"


def scheduler(group):
    """What `resources.<group>` in the config asks for: Snakemake schedules by it and the SLURM plugin turns
    it into sbatch requests. Less threads (a directive of its own) and a GPU count of 0 (the schema's
    default for CPU groups: nothing to ask for)."""
    return {key: value for key, value in RES[group].items() if key != "threads" and (key != "gpu" or value)}


FIGURES = {fid: fig.stem for fid, fig in FIGURE_REGISTRY.items()}
PAPER_SCORES = f"{workflow.basedir}/results/paper/scores.csv"
"""The paper's transcription in the checkout (what `clipo` reads when the working directory has none)."""
PAPER_TABLES = list(TABLE_REGISTRY)


RUNS = expand_grid(config["grid"])
TRAINED = [r for r in RUNS if r.method != "base"]
# The report's description page (workflow/report/workflow.rst) sees only the config: the steps a run
# gets where train.steps leaves them to the track.
config["_default_steps"] = default_steps_text(r.track for r in TRAINED)
for _r in RUNS:
    if _r.backend == "verl" and _r.track != "mini" and _r.model not in config["models"]:
        raise ValueError(f"config models: no path for model {_r.model!r} (run {_r.run_id}); "
                         f"add `models: {{{_r.model}: <folder or hub id>}}`")
check_grid(RUNS, config["tables"], config["figures"])  # fail now, naming the runs, not after training


def data_files(track, role):
    """Dataset files of a track under the data folder ('train', 'val' or 'eval'), from clipo.data.registry."""
    if role == "train":
        return [f"{DATA}/{get_dataset(key).path}" for key in get_track(track).train_files]
    if role == "val":  # the mini trainer's in-training validation prompts
        return [f"{DATA}/{validation_file(track).path}"]
    return [f"{DATA}/{path}" for path in eval_paths(track)]


def out_dir(wildcards, output):
    return os.path.dirname(output[0])


def run_set_dir(wildcards, output):
    """results/<run_set> of an output two levels down (tables/, figures/, significance/)."""
    return str(Path(output[0]).parents[1])


def data_dir(wildcards, input):
    """The data folder of the rule's dataset inputs (<data_dir>/<split>/<file>.parquet)."""
    return str(Path(input.data[0]).parents[1])


def options(*pairs):
    """Command-line words from (flag, value) pairs, for `{params.x:q}`; a None value leaves it to the CLI's
    default."""
    return [word for flag, value in pairs if value is not None for word in (flag, str(value))]


EVAL_OPTS = options(*[(f"--{key.replace('_', '-')}", value) for key, value in config["evaluate"].items()])


def run_of(wildcards):
    return RunSpec.parse(wildcards.run_id)


def run_args(wildcards):
    """The run's axes as `clipo train` flags (the run id is the single source of truth)."""
    r = run_of(wildcards)
    return options(("--track", r.track), ("--model", r.model), ("--method", r.method), ("--clipo", r.clipo),
                   ("--tau", None if r.tau is None else format_tau(r.tau)),
                   ("--group-size", r.group_size), ("--seed", r.seed))


def train_opts(wildcards):
    """Config options of `clipo train` that shape the result; the head warm-up only for runs that have a
    head."""
    t, r = config["train"], run_of(wildcards)
    flags = [("--steps", t["steps"]),
             ("--head-warmup-steps", t["head_warmup_steps"] if r.clipo != "none" else None)]
    if r.track == "mini":  # the GPU tracks keep the paper's sizes (Table 8); verl on CPU takes the mini ones
        flags += [("--train-batch-size", t["train_batch_size"]), ("--max-new-tokens", t["max_new_tokens"])]
    return options(*flags)


def execution_opts(wildcards, threads):
    """Mini-backend options that change how a run executes, never what it computes: its thread count and
    checkpoint interval (clipo.mini.train.Config.comparable leaves both out of what a resume must match),
    and --restart-if-changed: Snakemake reruns a job because its inputs or options changed, so checkpoints
    made from other inputs or options are moved aside (runs/<id>/discarded/) instead of blocking the job.

    Snakemake 9 reruns a job when a param changes, but records only params that are not derived from
    input, output, threads or resources (the rest move with those). Taking `threads`, this param stays out
    of that record, so a changed `train.checkpoint_every` reruns no training and no evaluation; it applies
    to the runs trained next."""
    if run_of(wildcards).backend != "mini":  # verl checkpoints once per epoch (clipo.methods)
        return []
    return options(("--threads", threads), ("--checkpoint-every", config["train"]["checkpoint_every"])) + [
        "--restart-if-changed"]


def base_model_path(run):
    return f"{RESULTS}/base-model" if run.track == "mini" else config["models"][run.model]


def train_inputs(wildcards):
    """What training reads: the track's training files; on the mini track (either backend) also the base
    model (built by `clipo sft`) and the validation prompts."""
    r = run_of(wildcards)
    inputs = {"data": data_files(r.track, "train")}
    if r.track == "mini":
        inputs |= {"model": base_model_path(r), "val": data_files(r.track, "val")}
    return inputs


def eval_model_input(wildcards):
    """What evaluation waits for: the finished training run, or the base model it starts from."""
    r = run_of(wildcards)
    if r.method != "base":
        return f"{RESULTS}/runs/{r.run_id}/summary.json"
    return [f"{RESULTS}/base-model"] if r.track == "mini" else []


def eval_model_path(wildcards):
    r = run_of(wildcards)
    return f"{RESULTS}/runs/{r.run_id}/final" if r.method != "base" else base_model_path(r)


def scores(runs):
    return [f"{RESULTS}/eval/{r.run_id}/scores.csv" for r in runs]


def summaries(runs):
    return [f"{RESULTS}/runs/{r.run_id}/summary.json" for r in runs]


def table_files(folder, tables, *exts):
    return [f"{folder}/{t}.{ext}" for t in tables for ext in exts]


def figure_files(figs):
    return [f"{RESULTS}/figures/{FIGURES[f]}.{ext}" for f in figs for ext in ("png", "pdf")]


def figure_inputs(wildcards):
    """What the registry says a figure reads: evaluations (scores and per-sample records), the trainers'
    step metrics and embedding dumps, or the paper's transcription."""
    reads = FIGURE_OF_STEM[wildcards.name].reads
    return {"evaluations": scores(RUNS), "training": summaries(TRAINED), "paper": [PAPER_SCORES]}[reads]


SECTION = {"summary": "1. Summary", "tables": "2. Tables", "significance": "3. Significance",
           "figures": "4. Figures", "paper": "5. Paper tables"}
"""Categories of `snakemake --report`; its viewer sorts them by name, hence the numbers."""
FIGURE_OF_STEM = {fig.stem: fig for fig in FIGURE_REGISTRY.values()}
"""Figure file stem (the `figure` rule's wildcard) → its registry entry: id, label, caption, inputs."""


def table_entries(folder, tables, caption, section):
    """Each table's HTML rendering as a report entry labelled 'Table 1 — main results'."""
    return [report(f"{folder}/{t}.html", caption=caption, category=SECTION[section],
                   labels={"table": table_label(t)}) for t in tables]
