"""Tiny randomly initialised stand-ins for hub models, saved to folders like the real ones."""

import torch


def save_tiny_gpt2(folder, texts, vocab_size=300, n_positions=256, n_layer=2, n_embd=32, seed=0) -> str:
    """A small GPT-2 with a byte-level BPE tokenizer learned from `texts`."""
    from selfconsuming.models import save_model
    from selfconsuming.pretrain import build_gpt2, train_bpe_tokenizer

    tok = train_bpe_tokenizer(list(texts), vocab_size=vocab_size)
    save_model(build_gpt2(tok, n_layer=n_layer, n_embd=n_embd, n_head=2, n_positions=n_positions, seed=seed,
                          attention_dropout=0.1), tok,
               folder)
    return str(folder)


def save_tiny_bert(folder, words, id2label=None, max_positions=128, seed=0) -> str:
    """A 2-layer BERT with a word-level vocab; with `id2label`, a sequence classifier with that head."""
    from pathlib import Path

    from transformers import BertConfig, BertForSequenceClassification, BertModel, BertTokenizerFast

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ","] + sorted(set(words) - {".", ","})
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt")).save_pretrained(folder)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=max_positions)
    if id2label is None:
        BertModel(config).save_pretrained(folder)
    else:
        config.num_labels = len(id2label)
        config.id2label = dict(id2label)
        config.label2id = {v: k for k, v in id2label.items()}
        BertForSequenceClassification(config).save_pretrained(folder)
    return str(folder)
