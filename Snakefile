# CLIPO reproducibility workflow: data -> base model -> RL runs -> evaluation -> tables, figures, report.
#   snakemake --cores all                           # the CPU mini study (config.yaml)
#   snakemake --cores all --configfile configs/mini-full.yaml
#   snakemake --profile profiles/slurm --configfile configs/paper.yaml --sdm apptainer
#   snakemake --cores 1 paper_tables                # the paper's own tables from results/paper
#   snakemake results/mini/figures/fig4_tsne.png    # regenerate one figure from existing results
#   snakemake --report report.html                  # the study in one browsable page (after a run)
# A second --configfile is merged over config.yaml, so the files in configs/ set every key.
from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config.yaml"


report: "workflow/report/workflow.rst"  # the landing page of `snakemake --report report.html`


def config_error(err):
    """One line naming the key, instead of jsonschema's schema dump."""
    key = ".".join(str(p) for p in err.absolute_path) or "<top level>"
    return WorkflowError(f"config key {key}: {err.message}")


def strict_integers(schema_file):
    """The schema's own check, except that 2.0 is no integer: JSON Schema counts it as one, and the job
    that receives `--steps 2.0` fails only after the data and the base model were built."""
    import jsonschema
    import yaml

    checker = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _, value: isinstance(value, int) and not isinstance(value, bool))
    strict = jsonschema.validators.extend(jsonschema.Draft202012Validator, type_checker=checker)
    with open(workflow.source_path(schema_file)) as f:
        return strict(yaml.safe_load(f))


SCHEMA = "workflow/schemas/config.schema.yaml"
try:
    validate(config, SCHEMA)  # also fills in the schema's defaults
except WorkflowError as e:
    if not hasattr(e.__context__, "absolute_path"):  # not a jsonschema ValidationError
        raise
    raise config_error(e.__context__) from None
if (err := next(strict_integers(SCHEMA).iter_errors(config), None)) is not None:
    raise config_error(err)


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
