"""Bias amplification and model collapse in self-consuming language models."""

LEANINGS = ("left", "center", "right")
