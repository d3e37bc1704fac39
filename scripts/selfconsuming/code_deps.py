"""Which package modules a rule script imports, transitively: a rule's code dependencies, computed."""

import ast
import hashlib
import os
import tempfile
from functools import lru_cache
from pathlib import Path

PACKAGE = "selfconsuming"
# Modules that decide how a job runs, never what it computes: editing one re-runs nothing.
EXECUTION_ONLY = {f"{PACKAGE}.jobserver"}


def _module_file(name: str, root: Path) -> Path | None:
    """The source file of a dotted module name under `root` (a module or a package's __init__)."""
    base = root.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_names(path: Path, root: Path) -> set[str]:
    """Dotted names of package modules a file imports (absolute, relative, and `from pkg import module`)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = _module_name(path, root) if path.is_relative_to(root / PACKAGE) else ""
    is_package = path.name == "__init__.py"
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = here.split(".") if is_package else here.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            names.add(base)
            names.update(f"{base}.{a.name}" for a in node.names)  # `from pkg import module`
    return {n for n in names if n == PACKAGE or n.startswith(PACKAGE + ".")}


def _with_parents(name: str) -> list[str]:
    """Importing a.b.c runs a/__init__ and a/b/__init__ too."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


@lru_cache(maxsize=None)
def _closure(script: Path, root: Path) -> tuple[Path, ...]:
    seen: set[Path] = set()
    todo = [script]
    while todo:
        path = todo.pop()
        for name in _imported_names(path, root):
            for dotted in _with_parents(name):
                if dotted in EXECUTION_ONLY:
                    break  # nor what it imports, nor `from jobserver import name`
                found = _module_file(dotted, root)
                if found is not None and found not in seen:
                    seen.add(found)
                    todo.append(found)
    data = {f for init in seen if init.name == "__init__.py" for f in (init.parent / "data").rglob("*") if f.is_file()}
    return tuple(sorted(seen | data))


def script_modules(script, root) -> list[Path]:
    """Package source files in the import closure of `script` (itself excluded), sorted.

    Imports anywhere in a file count, including those inside functions: a lazy import
    is still code the rule runs. A package's `data/` folder (the world's phrase banks)
    counts as code of that package. EXECUTION_ONLY modules (the job server) do not count.
    """
    return list(_closure(Path(script).resolve(), Path(root).resolve()))


@lru_cache(maxsize=None)
def _digest(path: Path, mtime_ns: int, size: int) -> str:
    """Content hash of a file (cached per version of it within a process)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def code_stamp(script, root, folder) -> Path:
    """One file standing for a script's whole import closure: `folder/<script stem>.txt`, a line
    per closure file (content hash, path), dated like the newest of them.

    A rule that takes the stamp as input re-runs exactly when it would with every closure file as
    input, but Snakemake stats one file per job instead of ~25: an input counts as updated when it
    is newer than the output and its checksum differs from the one Snakemake recorded, and the
    stamp's date and content change with the closure's. The stamp follows the files at every
    parse; it is rewritten (atomically, dated before it appears) only when it differs from them.
    """
    script, root = Path(script).resolve(), Path(root).resolve()
    files = script_modules(script, root)
    stats = [f.stat() for f in files]
    newest = max((st.st_mtime_ns for st in stats), default=0)
    listing = "".join(f"{_digest(f, st.st_mtime_ns, st.st_size)} {f.relative_to(root)}\n"
                      for f, st in zip(files, stats))
    stamp = Path(folder) / f"{script.stem}.txt"
    try:
        current = stamp.stat().st_mtime_ns == newest and stamp.read_text() == listing
    except FileNotFoundError:
        current = False
    if not current:
        stamp.parent.mkdir(parents=True, exist_ok=True)
        # a unique temp name: cluster jobs parse the Snakefile too, several at once, on several hosts
        fd, tmp = tempfile.mkstemp(dir=stamp.parent, prefix=f".{stamp.name}.")
        with os.fdopen(fd, "w") as f:
            f.write(listing)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide it from the rest of a group
        os.utime(tmp, ns=(newest, newest))
        os.replace(tmp, stamp)
    return stamp
