"""A job is held to its rule's threads: every OpenMP and BLAS pool, in a fresh process and in a
job server's worker (where the pools were loaded before the job began)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from selfconsuming import jobserver
from selfconsuming.runner import THREAD_VARIABLES

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
JOB = """
import json, sys
from types import SimpleNamespace
from selfconsuming.jobserver import delegate
delegate(__file__)
import numpy, sklearn.ensemble, torch  # loaded before the job's limit, as in a worker
from selfconsuming.runner import rule_logging
smk = SimpleNamespace(threads=1, config={}, log=[], rule="a_rule")
with rule_logging(smk):
    from sklearn.utils._openmp_helpers import _openmp_effective_n_threads
    from threadpoolctl import threadpool_info
    pools = {p["filepath"]: p["num_threads"] for p in threadpool_info()}
    out = {"pools": pools, "sklearn": _openmp_effective_n_threads(), "worker": "transformers" in sys.modules}
sys.stdout.write(json.dumps(out))
"""


@pytest.mark.parametrize("served", [False, True], ids=["fresh process", "job server worker"])
def test_a_one_thread_job_runs_every_pool_on_one_thread(served, job_server, tmp_path):
    script = tmp_path / "job.py"
    script.write_text(JOB)
    env = {k: v for k, v in os.environ.items() if k not in (jobserver.ENV, "SLURM_JOB_ID", *THREAD_VARIABLES)}
    env["PYTHONPATH"] = str(SCRIPTS)
    if served:
        env[jobserver.ENV] = job_server
    out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120, check=True).stdout
    seen = json.loads(out)
    assert seen["worker"] == served
    assert seen["pools"], "numpy, scikit-learn and torch load OpenMP and BLAS pools"
    assert set(seen["pools"].values()) == {1}, seen["pools"]
    assert seen["sklearn"] == 1, "scikit-learn's OpenMP code (gradient-boosted trees) runs on one thread"
