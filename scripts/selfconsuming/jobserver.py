"""Local runs: model jobs fork from one process that has torch and transformers imported.

A fresh python spends ~5 s of a core importing torch and transformers before a job does
anything: in benchmarks/bench_job.py, side by side, a default fine-tuning job takes 12.7 s
fresh and 7.2 s served, a greedy synthesis job 7.6 s and 1.9 s. `serve` imports them once. A job script's first call, `delegate(__real_file__)`,
hands the script Snakemake wrote (preamble and all) to the server, with the job's stdin,
stdout, stderr, working directory and environment, and waits. The server forks a
supervisor per job, which forks the worker that runs the script, relays the worker's exit
status and kills it if the job's own process goes away (Snakemake killed the job). The
server stays single-threaded and never waits on a job.

`delegate` runs nothing itself and returns at once when there is no server (the
environment variable unset, a SLURM job, the server gone): the job then runs in its own
process exactly as before. The server never imports the workflow's own modules beyond
this one, so a worker runs the code on disk.
"""

import json
import os
import runpy
import select
import signal
import socket
import sys
import time

from .runner import THREAD_VARIABLES

ENV = "SELFCONSUMING_JOB_SERVER"  # the server's socket path, in the environment of a local run's jobs
IN_WORKER = "SELFCONSUMING_JOB_WORKER"  # set in a worker, whose own `delegate` call then runs the job
# What the model and scoring jobs import from outside the workflow: the start-up a worker skips
# (~5 s of torch and transformers, ~2 s more for scoring).
PRELOAD = ("numpy", "torch", "tqdm.auto", "safetensors.torch", "tokenizers",
           "snakemake.iocontainers", "snakemake.logging",  # what Snakemake's preamble imports
           "transformers.modeling_utils", "transformers.models.auto.modeling_auto",
           "transformers.models.auto.tokenization_auto", "transformers.models.gpt2.modeling_gpt2",
           "transformers.optimization", "transformers.cache_utils", "transformers.generation",
           "pandas", "scipy.stats", "sklearn.linear_model", "spacy", "sentence_transformers")  # scoring
# The preloaded libraries' pools start at one thread; each job resizes them (runner.limit_threads).
ONE_THREAD = {name: "1" for name in THREAD_VARIABLES}
MAX_MESSAGE = 1 << 20
KILL_GRACE_SECONDS = 5.0


# ---------------------------------------------------------------- the job's side

def delegate(script: str) -> None:
    """Run `script` (the file Snakemake wrote for this job) in a preloaded worker and exit with its
    status; return without doing anything when no server takes it (the job then runs here)."""
    path = os.environ.get(ENV)
    if not path or os.environ.get(IN_WORKER) or os.environ.get("SLURM_JOB_ID"):
        return
    conn = None
    try:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        conn.connect(path)
        request = {"script": os.path.abspath(script), "cwd": os.getcwd(), "env": dict(os.environ),
                   "argv": sys.argv, "prefix": sys.prefix}
        socket.send_fds(conn, [json.dumps(request).encode()], [0, 1, 2])
        worker = json.loads(conn.recv(MAX_MESSAGE) or b'{"pid": null}')["pid"]
    except (OSError, ValueError):
        worker = None  # no server (not up yet, or gone): run here
    if worker is None:  # or the server refused: another python (a conda env's) runs this job
        if conn is not None:
            conn.close()
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_wait_for_worker(conn, worker))


def _wait_for_worker(conn: socket.socket, worker: int) -> int:
    """The worker's exit status (as a shell reports it), forwarding SIGINT and SIGTERM to it."""
    def forward(signum, frame):
        try:
            os.kill(worker, signum)
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    message = conn.recv(MAX_MESSAGE)
    if not message:
        print(f"job server: the supervisor of worker {worker} vanished", file=sys.stderr)
        return 1
    code = json.loads(message)["exit"]
    return code if code >= 0 else 128 - code  # killed by signal N: 128 + N, like a shell


# ---------------------------------------------------------------- the server's side

def serve(path: str, parent: int) -> None:
    """Import PRELOAD, then accept jobs on the socket `path` until SIGTERM or until `parent`
    (the Snakemake process) is gone."""
    for module in PRELOAD:
        try:
            __import__(module)
        except ImportError as error:  # an environment without it: its jobs import it themselves
            print(f"job server: not preloading {module}: {error}", flush=True)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # supervisors are reaped by the kernel
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(path + ".binding")
    listener.listen(64)
    os.rename(path + ".binding", path)  # jobs see the socket only once it accepts
    try:
        while os.getppid() == parent:
            if not select.select([listener], [], [], 1.0)[0]:
                continue
            conn, _ = listener.accept()
            if os.fork() == 0:
                listener.close()
                _supervise(conn)
            conn.close()
    finally:
        if os.path.exists(path):
            os.unlink(path)


def _supervise(conn: socket.socket) -> None:
    """In a child of the server: start the worker, report its pid and then its exit status;
    kill it if the job's process hangs up first. Never returns."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        data, fds, _, _ = socket.recv_fds(conn, MAX_MESSAGE, 3)
        request = json.loads(data)
        if request["prefix"] != sys.prefix:  # another environment's job (a conda env): it runs itself
            conn.sendall(json.dumps({"pid": None}).encode())
            return
        worker = os.fork()
        if worker == 0:
            conn.close()
            _work(request, fds)
        for fd in fds:
            os.close(fd)
        conn.sendall(json.dumps({"pid": worker}).encode())
        exited = _exit_watch(worker)
        while True:
            done, status = os.waitpid(worker, os.WNOHANG)
            if done:
                conn.sendall(json.dumps({"exit": os.waitstatus_to_exitcode(status)}).encode())
                break
            ready = select.select([conn] + exited, [], [], None if exited else 0.05)[0]
            if conn in ready and not conn.recv(MAX_MESSAGE):
                _kill(worker)  # the job's process is gone: Snakemake killed the job
                break
    finally:
        os._exit(0)


def _exit_watch(pid: int) -> list[int]:
    """[a descriptor that turns readable when `pid` exits] (Linux pidfd), or [] to poll instead."""
    try:
        return [os.pidfd_open(pid)]
    except (AttributeError, OSError):
        return []


def _kill(pid: int) -> None:
    """SIGTERM, then SIGKILL after KILL_GRACE_SECONDS; reaps the process."""
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + KILL_GRACE_SECONDS
    while time.monotonic() < deadline:
        if os.waitpid(pid, os.WNOHANG)[0]:
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def _work(request: dict, fds: list[int]) -> None:
    """In the worker: become the job (its stdio, directory, environment) and run its script. Never returns:
    it exits with os._exit, since a normal exit would run the server's own clean-up on the way out."""
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        os.environ[IN_WORKER] = "1"
        sys.argv = list(request["argv"])
        sys.path[0] = os.path.dirname(request["script"])  # as `python script`; the server's was its -m directory
        runpy.run_path(request["script"], run_name="__main__")
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        import atexit

        atexit._run_exitfuncs()  # what an exiting python runs; os._exit below skips it
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(code)


# ---------------------------------------------------------------- the workflow's side

def start_server(folder: str) -> tuple[object, str]:
    """Start a server for this process's jobs (a socket in `folder`); returns (process, socket path).

    The socket path is put in this process's environment, which every local job inherits.
    """
    import subprocess

    path = os.path.join(folder, "jobs.sock")
    scripts = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # holds this package
    env = {**os.environ, **ONE_THREAD, "PYTHONPATH": os.pathsep.join(
        [scripts] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}
    env.pop(ENV, None)
    with open(os.path.join(folder, "server.log"), "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "selfconsuming.jobserver", path, str(os.getpid())],
            env=env, start_new_session=True, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    os.environ[ENV] = path
    return process, path


def wait_until_accepting(process, path: str, seconds: float = 120.0) -> None:
    """Block until the server's socket appears; raise with its log if it exits or takes longer."""
    deadline = time.monotonic() + seconds
    while not os.path.exists(path):
        if process.poll() is not None or time.monotonic() > deadline:
            log = os.path.join(os.path.dirname(path), "server.log")
            text = open(log).read() if os.path.exists(log) else ""
            raise RuntimeError(f"the job server at {path} did not start: {text}")
        time.sleep(0.1)


def stop_server(process) -> None:
    """Ask the server to stop; jobs already running finish on their own."""
    os.environ.pop(ENV, None)
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except Exception:
            process.kill()


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
