from selfconsuming.jobserver import delegate

delegate(__real_file__)  # __real_file__: the job script Snakemake wrote; a local run hands it to a preloaded worker

from selfconsuming.loop import train_generation
from selfconsuming.runner import job_device, rule_logging

with rule_logging(snakemake) as log:
    device = job_device(snakemake)
    generation = int(snakemake.wildcards.get("g", 0))
    inputs = dict(snakemake.input.items())
    synthetic = {int(name[1:]): path for name, path in inputs.items() if name.startswith("g")}
    filters = {int(name[len("filter_g"):]): path for name, path in inputs.items() if name.startswith("filter_g")}
    info = train_generation(
        snakemake.params.recipe, generation, snakemake.params.init, snakemake.input.human, synthetic, snakemake.output[0],
        seed=snakemake.params.seed, device=device, allow_download=snakemake.config["allow_download"],
        filter_paths=filters, pretrain_path=inputs.get("pretrain"),
    )
    log.info("trained on %s", info["composition"])
