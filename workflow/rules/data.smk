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
    resources: **scheduler("data")
    conda: CPU_ENV
    container: CONTAINERS["cpu"]
    shell:
        LOG_HEADER +
        "clipo data synth --data-dir {params.data_dir:q} {params.opts:q} >> {log:q} 2>&1"


# One job per track, each fetching all of its files. Not one rule with a {track} wildcard: every output of
# a rule must carry its wildcards, and the released files' paths (<data_dir>/train/gsm8k.parquet, ...,
# clipo.data.registry) do not name the track; a marker file per track would change the outputs.
rule fetch_track_I:
    output:
        data=data_files("I", "train") + data_files("I", "eval"),
    params:
        track="I",
        data_dir=lambda w, output: Path(output[0]).parents[1],
        opts=lambda w: options(("--from", config["fetch_from"])),  # a function: its text is no wildcard pattern
    log:
        f"{LOGS}/data/fetch_track_I.log",
    benchmark:
        f"{BENCH}/data/fetch_track_I.tsv"
    threads: RES["data"]["threads"]
    resources: **scheduler("data")
    conda: CPU_ENV
    container: CONTAINERS["cpu"]
    shell:
        LOG_HEADER +
        "clipo data fetch --track {params.track:q} --dest {params.data_dir:q} {params.opts:q} >> {log:q} 2>&1"


use rule fetch_track_I as fetch_track_II with:
    output:
        data=data_files("II", "train") + data_files("II", "eval"),
    params:
        track="II",
    log:
        f"{LOGS}/data/fetch_track_II.log",
    benchmark:
        f"{BENCH}/data/fetch_track_II.tsv"
