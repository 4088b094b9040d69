# Analysis: each table set, figure, significance table and the report is one small, fast rule over
# result files, so any of them can be regenerated alone (delete it and ask for it). Each reads the runs
# of the config (--runs), never whatever else an earlier config left in the run set's folder.

RUN_IDS = ",".join(r.run_id for r in RUNS)


rule tables:
    input:
        scores(RUNS),
    output:
        table_entries(f"{RESULTS}/tables", config["tables"], "../report/tables.rst", "tables"),
        table_files(f"{RESULTS}/tables", config["tables"], "md", "tex", "csv"),
    params:
        results=run_set_dir,
        out=out_dir,
        only=",".join(config["tables"]),
        runs=RUN_IDS,
    log:
        f"{LOGS}/analysis/tables.log",
    benchmark:
        f"{BENCH}/analysis/tables.tsv"
    threads: RES["analysis"]["threads"]
    resources: **scheduler("analysis")
    conda: CPU_ENV
    container: CONTAINERS["cpu"]
    shell:
        LOG_HEADER +
        "clipo tables --source {params.results:q} --out {params.out:q} --only {params.only:q} --runs {params.runs:q} "
        ">> {log:q} 2>&1"


rule figure:
    input:
        figure_inputs,
    output:
        png=report(f"{RESULTS}/figures/{{name}}.png", caption="../report/figure.rst", category=SECTION["figures"],
                   labels=lambda w: {"figure": FIGURE_OF_STEM[w.name].label}),
        pdf=f"{RESULTS}/figures/{{name}}.pdf",
    wildcard_constraints:
        name="|".join(FIGURES.values()),
    params:
        results=run_set_dir,
        out=out_dir,
        only=lambda w: FIGURE_OF_STEM[w.name].id,
        runs=RUN_IDS,
        caption=lambda w: FIGURE_OF_STEM[w.name].caption,  # read by ../report/figure.rst
    log:
        f"{LOGS}/analysis/{{name}}.log",
    benchmark:
        f"{BENCH}/analysis/{{name}}.tsv"
    threads: RES["analysis"]["threads"]
    resources: **scheduler("analysis")
    conda: CPU_ENV
    container: CONTAINERS["cpu"]
    shell:
        LOG_HEADER +
        "clipo figures --results {params.results:q} --out {params.out:q} --only {params.only:q} --runs {params.runs:q} "
        ">> {log:q} 2>&1"


rule significance:
    input:
        scores(RUNS),
    output:
        bootstrap=report(f"{RESULTS}/significance/bootstrap.html", caption="../report/significance.rst",
                         category=SECTION["significance"], labels={"table": "Paired bootstrap: every Δ, 95% CI"}),
        se=report(f"{RESULTS}/significance/se_{RUN_SET}.html", caption="../report/standard_errors.rst",
                  category=SECTION["significance"], labels={"table": "Binomial standard errors: this run set"}),
        se_paper=report(f"{RESULTS}/significance/se_paper.html", caption="../report/paper_standard_errors.rst",
                        category=SECTION["significance"],
                        labels={"table": "Binomial standard errors: the paper's Δ"}),
        process=report(f"{RESULTS}/significance/process.html", caption="../report/process.rst",
                       category=SECTION["significance"], labels={"table": "Sound and lucky answers: every Δ, 95% CI"}),
        data=[f"{RESULTS}/significance/{name}.{ext}" for name in ("bootstrap", "process", f"se_{RUN_SET}", "se_paper")
              for ext in ("csv", "md")],
    params:
        results=run_set_dir,
        out=out_dir,
        runs=RUN_IDS,
    log:
        f"{LOGS}/analysis/significance.log",
    benchmark:
        f"{BENCH}/analysis/significance.tsv"
    threads: RES["analysis"]["threads"]
    resources: **scheduler("analysis")
    conda: CPU_ENV
    container: CONTAINERS["cpu"]
    shell:
        LOG_HEADER +
        "clipo significance --results {params.results:q} --out {params.out:q} --runs {params.runs:q} >> {log:q} 2>&1"


rule build_report:
    input:
        tables=table_files(f"{RESULTS}/tables", config["tables"], "md", "tex", "csv"),
        figures=figure_files(config["figures"]),
        significance=rules.significance.output if config["significance"] else [],
        scores=scores(RUNS),
    output:
        md=f"{RESULTS}/report.md",
        html=report(f"{RESULTS}/report.html", caption="../report/report.rst", category=SECTION["summary"],
                    labels={"entry": "Write-up: settings, caveats, every Δ with its interval"}),
        summary=f"{RESULTS}/summary.md",
    params:
        results=out_dir,
        runs=RUN_IDS,
        tables=",".join(config["tables"]) or "none",
        figures=",".join(config["figures"]) or "none",
    log:
        f"{LOGS}/analysis/report.log",
    benchmark:
        f"{BENCH}/analysis/report.tsv"
    threads: RES["analysis"]["threads"]
    resources: **scheduler("analysis")
    conda: CPU_ENV
    container: CONTAINERS["cpu"]
    shell:
        LOG_HEADER +
        "clipo report --results {params.results:q} --out {output.md:q} --runs {params.runs:q} "
        "--tables {params.tables:q} --figures {params.figures:q} >> {log:q} 2>&1"


rule render_paper_tables:
    output:
        table_entries("results/paper/tables", PAPER_TABLES, "../report/paper_tables.rst", "paper"),
        table_files("results/paper/tables", PAPER_TABLES, "md", "tex", "csv"),
    params:
        out=out_dir,
    log:
        "results/paper/logs/tables.log",
    benchmark:
        "results/paper/benchmarks/tables.tsv"
    threads: RES["analysis"]["threads"]
    resources: **scheduler("analysis")
    conda: CPU_ENV
    container: CONTAINERS["cpu"]
    shell:
        LOG_HEADER +
        "clipo tables --source paper --out {params.out:q} >> {log:q} 2>&1"
