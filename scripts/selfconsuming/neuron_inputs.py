"""The prompts neuron activations are measured on: the same 64-token blocks synthesis continues."""

from .synthesis import article_blocks


def synthesis_prompts(tokenizer, articles: list[dict], block_tokens: int, max_prompts: int) -> list[list[int]]:
    """The first `max_prompts` synthesis blocks, in corpus order (a fixed set for every model)."""
    bodies = tokenizer([a["text"] for a in articles], add_special_tokens=False)["input_ids"]
    blocks = [b for ids in bodies for b in article_blocks(ids, block_tokens)]
    return blocks[:max_prompts]
