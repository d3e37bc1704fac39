"""What every rule script does first: send logging, warnings and tqdm to the rule's log file."""

import contextlib
import logging
import os


@contextlib.contextmanager
def rule_logging(smk):
    """Redirect stdout/stderr into snakemake.log[0] and configure logging for the job."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if not smk.config.get("allow_download", False):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    log_path = smk.log[0] if len(smk.log) else os.devnull
    with open(log_path, "a", buffering=1) as log_file, contextlib.redirect_stderr(log_file), \
            contextlib.redirect_stdout(log_file):
        logging.basicConfig(stream=log_file, level=logging.INFO, force=True,
                            format="%(asctime)s %(name)s %(levelname)s %(message)s")
        try:
            yield logging.getLogger(f"rule.{smk.rule}")
        except Exception:
            logging.getLogger(f"rule.{smk.rule}").exception("rule %s failed", smk.rule)
            raise


def job_device(smk) -> str:
    """The torch device for this job, with this job's thread count; claims a free GPU when needed."""
    from .gpus import claim_gpu
    from .models import pick_device

    preference = smk.config.get("device", "auto")
    if preference in ("cuda", "auto") and int(smk.resources.get("gpu", 0) or 0) > 0:
        claim_gpu()
    import torch

    torch.set_num_threads(max(1, int(smk.threads)))
    return pick_device(preference)
