from selfconsuming.jobserver import delegate

delegate(__real_file__)  # __real_file__: the job script Snakemake wrote; a local run hands it to a preloaded worker

from selfconsuming.io import read_jsonl
from selfconsuming.pretrain import pretrain_world_gpt2
from selfconsuming.runner import job_device, rule_logging

with rule_logging(snakemake) as log:
    device = job_device(snakemake)
    p = snakemake.params.world_gpt2
    stats = pretrain_world_gpt2(
        read_jsonl(snakemake.input.corpus), snakemake.output[0],
        vocab_size=p["vocab_size"], n_layer=p["n_layer"], n_embd=p["n_embd"], n_head=p["n_head"],
        n_positions=p["n_positions"], attention_dropout=p["attention_dropout"], epochs=p["epochs"], lr=p["lr"],
        batch_size=p["batch_size"],
        schedule=p["schedule"], warmup=p["warmup"], seed=snakemake.params.seed, device=device,
    )
    log.info("pretraining done: %s", stats)
