# Bias amplification and model collapse in self-consuming language models.
# See README.md for how to run it and ../shared/DESIGN.md for the design.

import sys
from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")
sys.path.insert(0, str(Path(workflow.basedir) / "scripts"))

from selfconsuming.config import validated_config


configfile: "config/config.yaml"


# Schema (workflow/schemas/config.schema.yaml, defaults filled in) plus cross-field
# checks: a bad config fails here, naming the key, before any job is planned.
config.update(validated_config(config))


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


onstart:
    start_job_server()


onsuccess:
    stop_job_server()


onerror:
    stop_job_server()
