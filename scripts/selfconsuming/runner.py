"""What every rule script does first: send logging, warnings and tqdm to the rule's log file."""

import contextlib
import logging
import os


# The thread-pool sizes OpenMP and the BLAS libraries read when they load.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "GOTO_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def limit_threads(n: int) -> None:
    """Size every thread pool of the job (OpenMP, BLAS) to the rule's threads.

    A job then uses the cores it booked, as SLURM enforces by binding it to them. It
    also makes its numbers the same on a workstation and on a cluster. For example,
    a 1-thread job's gradient-boosted trees would otherwise sum gradients on every
    core here but on one under SLURM, and a parallel float sum depends on the number
    of threads. Pools of libraries loaded later read the variables; loaded ones are
    resized now.
    """
    from threadpoolctl import threadpool_limits

    n = max(1, int(n))
    for name in THREAD_VARIABLES:
        os.environ[name] = str(n)
    threadpool_limits(limits=n)


@contextlib.contextmanager
def rule_logging(smk):
    """Redirect stdout/stderr into snakemake.log[0], configure logging, and hold the job to its threads."""
    limit_threads(smk.threads)
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
