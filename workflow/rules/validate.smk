# The config against its schema: one error naming the key, and no float where an integer is meant.
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate


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


SCHEMA = "../schemas/config.schema.yaml"
try:
    validate(config, SCHEMA)  # also fills in the schema's defaults
except WorkflowError as e:
    if not hasattr(e.__context__, "absolute_path"):  # not a jsonschema ValidationError
        raise
    raise config_error(e.__context__) from None
if (err := next(strict_integers(SCHEMA).iter_errors(config), None)) is not None:
    raise config_error(err)
