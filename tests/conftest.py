import os
import random

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

WORDS = ("the senate vote budget plan critics supporters mayor city council tax reform school board "
         "health care bill said reported on monday tuesday new policy workers union rally police "
         "report court judge ruling climate energy price market growth").split()


def toy_articles(n=12, seed=0):
    """Small varied English-like articles with labels, for loop tests."""
    rng = random.Random(seed)
    labels = ["left", "center", "right"]
    rows = []
    for i in range(n):
        sents = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 12))).capitalize() + "." for _ in range(10)]
        rows.append({"id": f"a{i}", "title": f"Story {i}", "text": " ".join(sents), "label": labels[i % 3]})
    return rows


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tmp_path_factory):
    """A tiny randomly initialised GPT-2 with a BPE tokenizer, saved like any transformers model."""
    from selfconsuming.text import article_text
    from tiny_models import save_tiny_gpt2

    return save_tiny_gpt2(tmp_path_factory.mktemp("models") / "tiny-gpt2", [article_text(a) for a in toy_articles(60)])


@pytest.fixture(scope="module")
def job_server(tmp_path_factory):
    """A running job server (selfconsuming.jobserver): its socket path. Module scope: the server's
    variable in os.environ would otherwise reach every later workflow run's jobs."""
    from selfconsuming import jobserver

    folder = tmp_path_factory.mktemp("jobs")
    before = os.environ.get(jobserver.ENV)
    process, path = jobserver.start_server(str(folder))
    jobserver.wait_until_accepting(process, path)
    assert os.path.exists(path), (folder / "server.log").read_text()
    yield path
    jobserver.stop_server(process)
    assert not os.path.exists(path), "the server removes its socket when it stops"
    if before is not None:
        os.environ[jobserver.ENV] = before
