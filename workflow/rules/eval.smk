# Evaluation: every run (and each base model, method 'base') on every benchmark of its track, by
# `clipo evaluate`, which picks its backend from the run id: the mini track (trained by either backend)
# uses HF generate on the CPU; the GPU tracks run SGLang's offline engine on one GPU with the same flags
# and the same records. As in training, the two rules differ only in where the job runs
# (resources.eval_mini/eval_verl).


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
    resources: **scheduler("eval_mini")
    conda: CPU_ENV
    container: CONTAINERS["cpu"]
    shell:
        LOG_HEADER +
        "clipo evaluate --model {params.model:q} --run-id {wildcards.run_id:q} "
        "--source {params.source:q} --data-dir {params.data_dir:q} --out {params.out:q} {params.opts:q} "
        ">> {log:q} 2>&1"


use rule eval_mini as eval_verl with:
    wildcard_constraints:
        run_id=r"(?!mini_)[^/]+_verl",
    threads: RES["eval_verl"]["threads"]
    resources: **scheduler("eval_verl")
    conda: GPU_ENV
    container: CONTAINERS["gpu"]
