"""Model references: a hub id, a local directory, or gguf:<package-or-path>/<file>.

Everything is loaded with `local_files_only=True` unless the user set
`allow_download`, so the workflow never reaches for a hub on its own.
"""

import importlib.util
import os
import re
from dataclasses import dataclass
from pathlib import Path

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


@dataclass(frozen=True)
class ModelReference:
    """Where transformers should look: `path` (dir or hub id) and, for GGUF, the file."""

    path: str
    gguf_file: str | None = None
    is_local: bool = True

    def from_pretrained_kwargs(self, allow_download=False) -> dict:
        kwargs = {"local_files_only": not allow_download}
        if self.gguf_file:
            kwargs["gguf_file"] = self.gguf_file
        return kwargs


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name.replace("-", "_"))
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def parse_model_reference(ref: str) -> ModelReference:
    """Turn a config model string into a ModelReference, or raise ValueError naming the form."""
    if not isinstance(ref, str) or not ref.strip():
        raise ValueError(f"model reference must be a non-empty string, got {ref!r}")
    if ref.startswith("gguf:"):
        spec = ref[len("gguf:"):]
        if "/" not in spec:
            raise ValueError(f"gguf reference {ref!r} must be gguf:<package-or-path>/<file>")
        where, file = spec.rsplit("/", 1)
        folder = Path(where)
        if not folder.is_dir():
            folder = _package_dir(where)
            if folder is None:
                raise ValueError(f"gguf reference {ref!r}: {where!r} is neither a folder nor an installed package")
            matches = sorted(folder.rglob(file))
            if matches:
                folder = matches[0].parent
        if not (folder / file).is_file():
            raise ValueError(f"gguf reference {ref!r}: no file {file!r} under {folder}")
        return ModelReference(str(folder), gguf_file=file)
    if os.path.isdir(ref):
        return ModelReference(ref)
    if ref.startswith((".", "/", "~")) or ref.count("/") > 1:
        raise ValueError(f"model reference {ref!r} looks like a path but no such directory exists")
    if not _HUB_ID.match(ref):
        raise ValueError(f"model reference {ref!r} is not a hub id, a directory or gguf:<pkg>/<file>")
    return ModelReference(ref, is_local=False)


def installed_model_dir(package: str) -> str:
    """Folder of a model shipped inside a pip package (the one holding config.json)."""
    root = _package_dir(package)
    if root is None:
        raise ValueError(f"package {package!r} is not installed")
    configs = sorted(root.rglob("config.json"), key=lambda p: len(p.parts))
    if not configs:
        raise ValueError(f"package {package!r} holds no model (no config.json under {root})")
    return str(configs[0].parent)


def pick_device(preference: str = "auto") -> str:
    import torch

    if preference == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if preference == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device: cuda was asked for but torch sees no CUDA device")
    return preference


def load_tokenizer(ref: str, allow_download=False):
    """Tokenizer with a pad token (EOS when the model has none), padding on the left."""
    from transformers import AutoTokenizer

    mref = parse_model_reference(ref)
    tok = AutoTokenizer.from_pretrained(mref.path, **mref.from_pretrained_kwargs(allow_download))
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    return tok


def load_causal_lm(ref: str, device: str = "cpu", allow_download=False):
    """A causal LM with a pad token id; a GGUF file becomes a plain dense model (trainable, savable)."""
    from transformers import AutoModelForCausalLM

    mref = parse_model_reference(ref)
    kwargs = mref.from_pretrained_kwargs(allow_download)
    if mref.gguf_file:
        from transformers import GgufConfig

        kwargs["quantization_config"] = GgufConfig(gguf_file=mref.gguf_file, dequantize=True)
    model = AutoModelForCausalLM.from_pretrained(mref.path, **kwargs)
    quantizer = getattr(model, "hf_quantizer", None)
    if mref.gguf_file and quantizer is not None:
        # the weights are unpacked already: without the quantizer the model trains and saves like any other
        quantizer.remove_quantization_config(model)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = model.config.eos_token_id
    return model.to(device)


def save_model(model, tokenizer, out_dir, extra_files: dict[str, str] | None = None) -> None:
    """save_pretrained (plus any extra text files) into a temp dir renamed onto out_dir.

    A killed job leaves nothing that looks like a finished model.
    """
    from .io import atomic_path

    with atomic_path(out_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        for name, text in (extra_files or {}).items():
            (Path(tmp) / name).write_text(text)
