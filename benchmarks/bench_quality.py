"""Time every quality and diversity metric on a corpus the size of the study.

1,518 articles of about 700 tokens, built from seeded random sentences; torch and
BLAS limited to 2 threads (the offline machine). Targets: each metric under 2
minutes, syntactic diversity under 5.

    .venv/bin/python benchmarks/bench_quality.py [--articles 1518] [--vocab 8192]
"""

import argparse
import os
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402

from selfconsuming import diversity as dv  # noqa: E402
from selfconsuming import quality as q  # noqa: E402
from selfconsuming.text import split_sentences  # noqa: E402

PEOPLE = ["the mayor", "a local teacher", "the union leader", "the senator", "the new coach", "a young farmer",
          "the health minister", "several residents", "the company founder", "a federal judge", "the governor",
          "two nurses", "the police chief", "an economist", "the school board", "a retired soldier"]
ACTIONS = ["visited", "criticised", "praised", "described", "opened", "questioned", "defended", "inspected",
           "rejected", "supported", "investigated", "announced"]
THINGS = ["the old train station", "a controversial housing plan", "the crowded river market",
          "the proposed tax on fuel", "a small family bakery", "the hospital's emergency ward",
          "the annual harvest festival", "a report on school lunches", "the border wall", "a new climate bill",
          "the minimum wage increase", "the city's water supply", "a rise in rents", "the election results"]
WHEN = ["on Tuesday morning", "after weeks of debate", "despite heavy rain", "in front of cameras",
        "for the first time", "without any warning", "during a long interview", "late last night",
        "before the vote", "at a crowded town hall"]
FRAMES = [
    "{P} {A} {T} {W}.",
    "According to {p}, {t} will cost taxpayers {n} million dollars by {y}.",
    "{W_}, {p} {a} {t}, saying it was long overdue.",
    "Critics say {t} hurts families, while {p} argues it creates {n} jobs.",
    "Why has {p} {a} {t}?",
    "In {y}, {p} {a} {t} and promised {n} new homes.",
    "\"We cannot wait any longer,\" said {p}, who {a} {t} {w}.",
]


def article(rng, n_sentences=40):
    sentences = []
    for _ in range(n_sentences):
        p, a, t, w = rng.choice(PEOPLE), rng.choice(ACTIONS), rng.choice(THINGS), rng.choice(WHEN)
        s = rng.choice(FRAMES).format(P=p.capitalize(), p=p, A=a, a=a, T=t, t=t, W=w, w=w, W_=w.capitalize(),
                                      n=int(rng.integers(2, 900)), y=int(rng.integers(1990, 2030)))
        sentences.append(s[0].upper() + s[1:])
    return " ".join(sentences)


def timed(label, fn, target_s, results):
    """Wall time against the target, and CPU time (on a shared machine wall > CPU / threads)."""
    start, cpu_start = time.perf_counter(), time.process_time()
    value = fn()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    results.append((label, seconds, target_s))
    print(f"{label:<36} wall {seconds:7.1f} s  cpu {cpu:7.1f} s  target {target_s:4.0f} s  "
          f"wall/target {seconds / target_s:5.2f}", flush=True)
    return value


def tiny_gpt2(texts, folder, vocab_size, seed):
    """A 4 layer x 128 dim GPT-2 with a byte-level BPE trained on the corpus (the offline model's shape)."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    torch.manual_seed(seed)
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>"],
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    config = GPT2Config(vocab_size=vocab_size, n_positions=512, n_embd=128, n_layer=4, n_head=4,
                        eos_token_id=tok.eos_token_id, bos_token_id=tok.eos_token_id)
    GPT2LMHeadModel(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return GPT2LMHeadModel.from_pretrained(folder), tok


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=1518)
    parser.add_argument("--vocab", type=int, default=8192, help="BPE vocabulary of the perplexity model")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(2)
    rng = np.random.default_rng(args.seed)
    texts = [article(rng) for _ in range(args.articles)]
    n_tokens = [len(dv.tokenize(t)) for t in texts]
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"corpus: {len(texts)} articles, mean {np.mean(n_tokens):.0f} word tokens, "
          f"{sum(len(split_sentences(t)) for t in texts)} sentences; torch threads {torch.get_num_threads()}")
    results = []

    with tempfile.TemporaryDirectory() as tmp:
        metrics = timed("train gibberish detector (20k)",
                        lambda: q.train_gibberish_detector(texts, args.seed, f"{tmp}/det", max_sentences=20000),
                        120, results)
        print(f"  held-out accuracy {metrics['accuracy']:.3f}, F1 "
              + ", ".join(f"{c} {v:.3f}" for c, v in metrics["f1"].items()))
        detector = q.load_gibberish_detector(f"{tmp}/det")
        tqi, _ = timed("TQI (sklearn detector, all)", lambda: q.text_quality_index(texts, detector), 120, results)
        print(f"  mean TQI {np.nanmean(tqi):.3f}")

        model, tok = tiny_gpt2(texts[:300], f"{tmp}/gpt2", args.vocab, args.seed)
        n_bpe = np.mean([len(tok(t)["input_ids"]) for t in texts[:50]])
        ppl = timed(f"perplexity (4x128 GPT-2, V={args.vocab})",
                    lambda: q.article_perplexities(texts, model, tok, batch_size=8), 120, results)
        print(f"  mean BPE tokens/article {n_bpe:.0f}, window 512, stride 256, median ppl {np.median(ppl):.1f}")
        few = texts[:150]
        half = timed("  perplexity, 150 articles, stride 256",
                     lambda: q.article_perplexities(few, model, tok, stride=256), 120, [])
        full = timed("  perplexity, 150 articles, stride 512",
                     lambda: q.article_perplexities(few, model, tok, stride=512), 120, [])
        print(f"  median |ppl(stride 512) / ppl(stride 256) - 1| = {np.median(np.abs(full / half - 1)):.4f}")

    p = dv.default_params()
    seed = args.seed
    order = dv.sample_indices(len(texts), len(texts), seed)

    def unique():
        stream = dv.token_sample(texts, p["sample_tokens"], seed)
        return [dv.unique_ngram_ratio(stream, n) for n in (1, 2, 3)]

    def distinct():
        tokens = [dv.tokenize(texts[i]) for i in order[:p["distinct_sample"]]]
        return [dv.distinct_n(tokens, n) for n in (1, 2, 3)]

    print(f"unique-1..3 {np.round(timed('unique-n', unique, 120, results), 4)}")
    print(f"distinct-1..3 {np.round(timed('distinct-n', distinct, 120, results), 4)}")
    bleu = timed(f"self-BLEU ({p['selfbleu_sample']} articles)",
                 lambda: dv.self_bleu([dv.tokenize(texts[i]) for i in order[:p["selfbleu_sample"]]]), 120, results)
    print(f"  self-BLEU {bleu:.4f}")
    encoder = timed("load MiniLM encoder", lambda: dv.load_sentence_encoder(p["encoder"], "cpu"), 120, results)
    sem = timed(f"semantic ({p['semantic_sample']} articles)",
                lambda: dv.semantic_diversity([texts[i] for i in order[:p["semantic_sample"]]], encoder), 120, results)
    print(f"  semantic diversity {sem:.4f}")
    nlp = timed("load spaCy pipeline", lambda: dv.load_spacy(p["spacy_model"]), 120, results)
    sentences = [s for t in texts for s in split_sentences(t)]
    sample = [sentences[i] for i in dv.sample_indices(len(sentences), p["syntactic_sample"], seed)]
    syn = timed(f"syntactic ({p['syntactic_sample']} sentences)",
                lambda: dv.syntactic_diversity(sample, nlp, p["syntax_node_label"], p["wl_iterations"]), 300, results)
    print(f"  syntactic diversity {syn:.4f}")
    everything = timed("diversity_metrics (all, loaded)",
                       lambda: dv.diversity_metrics(texts, seed, encoder=encoder, nlp=nlp), 300, results)
    print(f"  {everything}")

    print(f"load average {os.getloadavg()[0]:.1f}")
    worst = max(results, key=lambda r: r[1] / r[2])
    print(f"\nslowest relative to target: {worst[0]} at {worst[1] / worst[2]:.2f} of its target; "
          f"all within targets: {all(s <= t for _, s, t in results)}")


if __name__ == "__main__":
    main()
