# Data: the mini track's synthetic splits, and the paper's released files for the GPU tracks.


rule synth_data:
    output:
        data=[f"{DATA}/{d.path}" for d in MINI],
    params:
        data_dir=lambda w, output: Path(output[0]).parents[1],
        opts=options(("--seed", config["synth"]["seed"]), ("--n-train", config["synth"]["n_train"]),
                     ("--n-eval", config["synth"]["n_eval"])),
    log:
        f"{LOGS}/data/synth.log",
    benchmark:
        f"{BENCH}/data/synth.tsv"
    threads: RES["data"]["threads"]
    resources:
        mem_mb=RES["data"]["mem_mb"],
        runtime=RES["data"]["runtime"],
    conda:
        CPU_ENV
    container:
        CONTAINERS["cpu"]
    shell:
        LOG_HEADER +
        "clipo data synth --data-dir {params.data_dir} {params.opts} >> {log} 2>&1"


for _track in ("I", "II"):

    rule:
        name:
            f"fetch_track_{_track}"
        output:
            data=data_files(_track, "train") + data_files(_track, "eval"),
        params:
            track=_track,
            data_dir=lambda w, output: Path(output[0]).parents[1],
            opts=options(("--from", config["fetch_from"])),
        log:
            f"{LOGS}/data/fetch_track_{_track}.log",
        benchmark:
            f"{BENCH}/data/fetch_track_{_track}.tsv"
        threads: RES["data"]["threads"]
        resources:
            mem_mb=RES["data"]["mem_mb"],
            runtime=RES["data"]["runtime"],
        conda:
            CPU_ENV
        container:
            CONTAINERS["cpu"]
        shell:
            LOG_HEADER +
            "clipo data fetch --track {params.track} --dest {params.data_dir} {params.opts} >> {log} 2>&1"
