"""The job server: a delegated job runs in a preloaded worker with the job's stdio, directory,
environment and exit status; a killed job kills its worker; without a server the job runs itself."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from selfconsuming import jobserver

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
JOB = """
import json, os, sys, time
from selfconsuming.jobserver import delegate
delegate(__file__)
print(json.dumps({"pid": os.getpid(), "cwd": os.getcwd(), "mark": os.environ.get("MARK"),
                  "preloaded": "transformers.modeling_utils" in sys.modules, "argv": sys.argv[1:],
                  "path0": sys.path[0]}))
sys.stderr.write("to stderr\\n")
if os.environ.get("SLEEP"):
    open(os.environ["PIDFILE"], "w").write(str(os.getpid()))
    time.sleep(float(os.environ["SLEEP"]))
sys.exit(int(os.environ.get("CODE", "0")))
"""


def run_job(tmp_path, socket_path, python=sys.executable, **env):
    script = tmp_path / "job.py"
    script.write_text(JOB)
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    full = {k: v for k, v in os.environ.items() if k not in (jobserver.ENV, "SLURM_JOB_ID")}
    full.update(PYTHONPATH=str(SCRIPTS), MARK="job-env", **env)
    if socket_path:
        full[jobserver.ENV] = socket_path
    return subprocess.Popen([python, str(script), "an-arg"], cwd=work, env=full,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True), work


def test_worker_runs_the_job_as_the_job(job_server, tmp_path):
    job, work = run_job(tmp_path, job_server, CODE="3")
    out, err = job.communicate(timeout=60)
    assert job.returncode == 3
    seen = json.loads(out)
    assert seen["pid"] != job.pid, "a worker, not the job's own process, ran the script"
    assert seen["preloaded"], "the worker has the preloaded modules"
    assert seen["cwd"] == str(work) and seen["mark"] == "job-env" and seen["argv"] == ["an-arg"]
    assert seen["path0"] == str(tmp_path), "imports resolve as in `python job.py`: the script's folder first"
    assert "to stderr" in err


def test_without_a_server_the_job_runs_itself(tmp_path):
    job, _ = run_job(tmp_path, None)
    out, _ = job.communicate(timeout=60)
    assert job.returncode == 0
    assert json.loads(out)["pid"] == job.pid


def test_a_server_that_is_gone_falls_back(tmp_path):
    job, _ = run_job(tmp_path, str(tmp_path / "no-such.sock"))
    out, _ = job.communicate(timeout=60)
    assert job.returncode == 0 and json.loads(out)["pid"] == job.pid


def test_slurm_jobs_never_delegate(job_server, tmp_path):
    job, _ = run_job(tmp_path, job_server, SLURM_JOB_ID="7")
    out, _ = job.communicate(timeout=60)
    assert json.loads(out)["pid"] == job.pid


def test_another_environments_job_runs_itself(job_server, tmp_path):
    """A job of another python environment (a rule's conda env) must not run in this one's worker."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "env")], check=True)
    job, _ = run_job(tmp_path, job_server, python=str(tmp_path / "env" / "bin" / "python"))
    out, err = job.communicate(timeout=60)
    assert job.returncode == 0, err
    seen = json.loads(out)
    assert seen["pid"] == job.pid and not seen["preloaded"]


def _wait_for_file(path, seconds=60):
    deadline = time.monotonic() + seconds
    while not path.exists() or not path.read_text():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)
    return int(path.read_text())


def _gone(pid, seconds=15):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def test_sigterm_reaches_the_worker(job_server, tmp_path):
    pidfile = tmp_path / "worker.pid"
    job, _ = run_job(tmp_path, job_server, SLEEP="60", PIDFILE=str(pidfile))
    worker = _wait_for_file(pidfile)
    job.send_signal(signal.SIGTERM)
    job.communicate(timeout=30)
    assert job.returncode == 128 + signal.SIGTERM
    assert _gone(worker)


def test_killing_the_job_kills_its_worker(job_server, tmp_path):
    pidfile = tmp_path / "worker.pid"
    job, _ = run_job(tmp_path, job_server, SLEEP="60", PIDFILE=str(pidfile))
    worker = _wait_for_file(pidfile)
    job.kill()  # as Snakemake kills a job: the worker's supervisor sees the job hang up
    job.communicate(timeout=30)
    assert _gone(worker), "the worker outlived its killed job"
