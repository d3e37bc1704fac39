from selfconsuming.jobserver import delegate

delegate(__real_file__)  # __real_file__: the job script Snakemake wrote; a local run hands it to a preloaded worker

from selfconsuming.loop import synthesize_generation
from selfconsuming.runner import job_device, rule_logging

with rule_logging(snakemake) as log:
    device = job_device(snakemake)
    recipe = snakemake.params.recipe
    generation = snakemake.wildcards.get("g", "base")
    model = snakemake.params.get("model") or snakemake.input.model
    samples = snakemake.params.get("samples") or 1
    n = synthesize_generation(
        recipe, model, snakemake.input.human, snakemake.output[0], (recipe["setup"], generation, "synthesis"),
        seed=snakemake.params.seed, device=device, allow_download=snakemake.config["allow_download"], samples=samples,
    )
    log.info("wrote %d synthetic articles (%d per human article)", n, samples)
