"""Loop jobs start fast: fine-tuning and synthesis import none of the scoring stack."""

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
# Each costs a second or more of start-up in every loop job, and none is needed there.
SCORING_PACKAGES = {"sklearn", "pandas", "matplotlib", "spacy", "sentence_transformers", "seaborn", "statsmodels"}


def test_finetune_and_synthesis_import_no_scoring_package(tiny_gpt2_dir):
    """What scripts/finetune.py and scripts/synthesize.py import, then load, generate, train and save."""
    code = f"""
import json, sys, tempfile
from selfconsuming.loop import read_filter_scores, synthesize_generation, train_generation
from selfconsuming.runner import job_device, rule_logging
from selfconsuming.finetune import finetune_causal_lm
from selfconsuming.models import load_causal_lm, load_tokenizer, save_model
from selfconsuming.synthesis import synthesize_articles

model, tok = load_causal_lm({str(tiny_gpt2_dir)!r}), load_tokenizer({str(tiny_gpt2_dir)!r})
text = "the council met on tuesday and agreed on the budget " * 8
synthesize_articles(model, tok, [{{"id": "a", "text": text}}], decoding="greedy", block_tokens=16, new_tokens=4,
                    batch_size=4)
finetune_causal_lm(model, tok, [text], epochs=1, lr=1e-3, batch_size=1, weight_decay=0.0, max_length=64, seed=0)
read_filter_scores({{}})
save_model(model, tok, tempfile.mkdtemp() + "/m")
print(json.dumps(sorted({{name.split(".")[0] for name in sys.modules}})))
"""
    env = {**os.environ, "PYTHONPATH": str(SCRIPTS)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    imported = set(json.loads(out.strip().splitlines()[-1]))
    assert not imported & SCORING_PACKAGES, sorted(imported & SCORING_PACKAGES)
