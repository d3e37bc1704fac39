"""One GPU per running job on a multi-GPU workstation.

Snakemake counts `gpu` resources but does not say which card a job gets. Each
GPU job takes an exclusive lock on one card index and restricts itself to that
card through CUDA_VISIBLE_DEVICES before CUDA is initialised. Under SLURM (or
whenever CUDA_VISIBLE_DEVICES is already set) the scheduler's choice is kept.
"""

import atexit
import fcntl
import os
import subprocess
import tempfile

_held = []


def visible_gpu_count() -> int:
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))


def claim_gpu(n_gpus: int | None = None, lock_dir: str | None = None) -> str | None:
    """Lock a free card index and set CUDA_VISIBLE_DEVICES to it; returns the index (or None)."""
    if os.environ.get("CUDA_VISIBLE_DEVICES") not in (None, ""):
        return os.environ["CUDA_VISIBLE_DEVICES"]
    n_gpus = visible_gpu_count() if n_gpus is None else n_gpus
    lock_dir = lock_dir or os.environ.get("SELFCONSUMING_GPU_LOCKS", tempfile.gettempdir())
    for index in range(n_gpus):
        handle = open(os.path.join(lock_dir, f"selfconsuming-gpu{index}.lock"), "w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        _held.append(handle)
        atexit.register(handle.close)
        os.environ["CUDA_VISIBLE_DEVICES"] = str(index)
        return str(index)
    if n_gpus:
        raise RuntimeError(f"all {n_gpus} GPUs are taken by other jobs; run snakemake with --resources gpu={n_gpus}")
    return None
