# Evaluation: every run (and each base model, method 'base') on every benchmark of its track, by
# `clipo evaluate`: --backend mini uses HF generate on the CPU; --backend verl runs SGLang's offline
# engine on one GPU with the same flags and the same records.


rule eval_mini:
    input:
        model=eval_model_input,
        data=lambda w: data_files(run_of(w).track, "eval"),
    output:
        scores=f"{RESULTS}/eval/{{run_id}}/scores.csv",
        samples=f"{RESULTS}/eval/{{run_id}}/samples.parquet",
    wildcard_constraints:
        run_id=r"mini_[^/]+",  # the mini track, trained by either backend, is evaluated on the CPU
    params:
        model=eval_model_path,
        source=RUN_SET,
        data_dir=data_dir,
        out=out_dir,
        opts=EVAL_OPTS,
    log:
        f"{LOGS}/eval/{{run_id}}.log",
    benchmark:
        f"{BENCH}/eval/{{run_id}}.tsv"
    threads: RES["eval_mini"]["threads"]
    resources:
        mem_mb=RES["eval_mini"]["mem_mb"],
        runtime=RES["eval_mini"]["runtime"],
    conda:
        CPU_ENV
    container:
        CONTAINERS["cpu"]
    shell:
        LOG_HEADER +
        "clipo evaluate --backend mini --model {params.model} --run-id {wildcards.run_id} --source {params.source} "
        "--data-dir {params.data_dir} --out {params.out} {params.opts} >> {log} 2>&1"


rule eval_verl:
    input:
        model=eval_model_input,
        data=lambda w: data_files(run_of(w).track, "eval"),
    output:
        scores=f"{RESULTS}/eval/{{run_id}}/scores.csv",
        samples=f"{RESULTS}/eval/{{run_id}}/samples.parquet",
    wildcard_constraints:
        run_id=r"(?!mini_)[^/]+_verl",
    params:
        model=eval_model_path,
        source=RUN_SET,
        data_dir=data_dir,
        out=out_dir,
        opts=EVAL_OPTS,
    log:
        f"{LOGS}/eval/{{run_id}}.log",
    benchmark:
        f"{BENCH}/eval/{{run_id}}.tsv"
    threads: RES["eval_verl"]["threads"]
    resources:
        mem_mb=RES["eval_verl"]["mem_mb"],
        runtime=RES["eval_verl"]["runtime"],
        gpu=RES["eval_verl"]["gpu"],
    conda:
        GPU_ENV
    container:
        CONTAINERS["gpu"]
    shell:
        LOG_HEADER +
        "clipo evaluate --backend verl --model {params.model} --run-id {wildcards.run_id} "
        "--source {params.source} --data-dir {params.data_dir} --out {params.out} {params.opts} >> {log} 2>&1"
