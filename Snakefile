# CLIPO reproducibility workflow: data -> base model -> RL runs -> evaluation -> tables, figures, report.
#   snakemake --cores all                           # the CPU mini study (config.yaml)
#   snakemake --cores all --configfile configs/mini-full.yaml
#   snakemake --profile profiles/slurm --configfile configs/paper.yaml --sdm apptainer
#   snakemake --cores 1 paper_tables                # the paper's own tables from results/paper
#   snakemake results/mini/figures/fig4_tsne.png    # regenerate one figure from existing results
#   snakemake --report report.html                  # the study in one browsable page (after a run)
# A second --configfile is merged over config.yaml, so the files in configs/ set every key.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "workflow/report/workflow.rst"  # the landing page of `snakemake --report report.html`


include: "workflow/rules/validate.smk"  # the config against workflow/schemas/config.schema.yaml
include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/eval.smk"
include: "workflow/rules/analysis.smk"


rule all:
    default_target: True
    input:
        rules.tables.output,
        figure_files(config["figures"]),
        rules.significance.output if config["significance"] else [],
        rules.build_report.output if config["report"] else [],
        scores(RUNS),


rule paper_tables:
    input:
        rules.render_paper_tables.output,


rule figures:
    input:
        figure_files(config["figures"]),


rule report:
    input:
        rules.build_report.output,
