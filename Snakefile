# Bias amplification and model collapse in self-consuming language models.
# See README.md for how to run it and ../shared/DESIGN.md for the design.

from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml", set_default=True)


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/classifier.smk"
include: "workflow/rules/loop.smk"
include: "workflow/rules/score.smk"
include: "workflow/rules/neurons.smk"
include: "workflow/rules/theory.smk"
include: "workflow/rules/report.smk"


report: "workflow/report/workflow.rst"


rule all:
    input:
        all_outputs(),
    default_target: True
