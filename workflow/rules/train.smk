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
        opts=options(("--steps", config["sft"]["steps"]), ("--seed", config["sft"]["seed"])),
    log:
        f"{LOGS}/sft.log",
    benchmark:
        f"{BENCH}/sft.tsv"
    threads: RES["sft"]["threads"]
    resources:
        mem_mb=RES["sft"]["mem_mb"],
        runtime=RES["sft"]["runtime"],
    conda:
        CPU_ENV
    container:
        CONTAINERS["cpu"]
    shell:
        LOG_HEADER +
        "clipo sft --data-dir {params.data_dir} --out {output} {params.opts} >> {log} 2>&1"


rule train_mini:
    input:
        model=f"{RESULTS}/base-model",
        data=lambda w: data_files(run_of(w).track, "train"),
        val=lambda w: data_files(run_of(w).track, "val"),
    output:
        f"{RESULTS}/runs/{{run_id}}/summary.json",
    wildcard_constraints:
        run_id=r"[^/]+_mini",
    params:
        run=run_args,
        data_dir=data_dir,
        out=out_dir,
        opts=train_opts,
    log:
        f"{LOGS}/train/{{run_id}}.log",
    benchmark:
        f"{BENCH}/train/{{run_id}}.tsv"
    threads: RES["train_mini"]["threads"]
    resources:
        mem_mb=RES["train_mini"]["mem_mb"],
        runtime=RES["train_mini"]["runtime"],
    conda:
        CPU_ENV
    container:
        CONTAINERS["cpu"]
    shell:
        LOG_HEADER +
        "clipo train --backend mini {params.run} --model-path {input.model} --data-dir {params.data_dir} "
        "--out {params.out} --threads {threads} {params.opts} >> {log} 2>&1"


rule train_verl:
    input:
        model=lambda w: [f"{RESULTS}/base-model"] if run_of(w).track == "mini" else [],  # verl on CPU
        data=lambda w: data_files(run_of(w).track, "train"),
    output:
        f"{RESULTS}/runs/{{run_id}}/summary.json",
    wildcard_constraints:
        run_id=r"[^/]+_verl",
    params:
        run=run_args,
        model_path=lambda w: base_model_path(run_of(w)),
        data_dir=data_dir,
        out=out_dir,
        opts=train_opts,
    log:
        f"{LOGS}/train/{{run_id}}.log",
    benchmark:
        f"{BENCH}/train/{{run_id}}.tsv"
    threads: RES["train_verl"]["threads"]
    resources:
        mem_mb=RES["train_verl"]["mem_mb"],
        runtime=RES["train_verl"]["runtime"],
        gpu=RES["train_verl"]["gpu"],
    conda:
        GPU_ENV
    container:
        CONTAINERS["gpu"]
    shell:
        LOG_HEADER +
        "clipo train --backend verl {params.run} --model-path {params.model_path} "
        "--data-dir {params.data_dir} --out {params.out} {params.opts} >> {log} 2>&1"
