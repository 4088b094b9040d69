# Training: the mini base model (SFT), then one job per RL run of the grid, on the CPU (mini) or on a
# GPU node (verl). Only summary.json (written last) is declared: checkpoints/ must survive an
# interrupted job, because Snakemake deletes the declared outputs of incomplete jobs before a rerun.


rule sft:
    input:
        data=data_files("mini", "train"),
    output:
        directory(f"{RESULTS}/base-model"),
    params:
        data_dir=data_dir,
        opts=options(("--steps", config["sft"]["steps"]), ("--seed", config["sft"]["seed"]),
                     ("--bare-answer-share", config["sft"]["bare_answer_share"])),
    log:
        f"{LOGS}/sft.log",
    benchmark:
        f"{BENCH}/sft.tsv"
    threads: RES["sft"]["threads"]
    resources: **scheduler("sft")
    conda: CPU_ENV
    container: CONTAINERS["cpu"]
    shell:
        LOG_HEADER +
        "clipo sft --data-dir {params.data_dir:q} --out {output:q} {params.opts:q} >> {log:q} 2>&1"


# One command for both backends; the run id's suffix (_mini / _verl) picks the rule, and the two rules
# differ only in where the job runs: threads, memory, GPUs, environment (resources.train_mini/train_verl).
rule train_mini:
    input:
        unpack(train_inputs),
    output:
        f"{RESULTS}/runs/{{run_id}}/summary.json",
    wildcard_constraints:
        run_id=r"[^/]+_mini",
    params:
        backend=lambda w: run_of(w).backend,
        run=run_args,
        model_path=lambda w: base_model_path(run_of(w)),
        data_dir=data_dir,
        out=out_dir,
        execution=execution_opts,
        opts=train_opts,
    log:
        f"{LOGS}/train/{{run_id}}.log",
    benchmark:
        f"{BENCH}/train/{{run_id}}.tsv"
    threads: RES["train_mini"]["threads"]
    resources: **scheduler("train_mini")
    conda: CPU_ENV
    container: CONTAINERS["cpu"]
    shell:
        LOG_HEADER +
        "clipo train --backend {params.backend:q} {params.run:q} --model-path {params.model_path:q} "
        "--data-dir {params.data_dir:q} --out {params.out:q} {params.execution:q} {params.opts:q} >> {log:q} 2>&1"


use rule train_mini as train_verl with:
    wildcard_constraints:
        run_id=r"[^/]+_verl",
    threads: RES["train_verl"]["threads"]
    resources: **scheduler("train_verl")
    conda: GPU_ENV
    container: CONTAINERS["gpu"]
