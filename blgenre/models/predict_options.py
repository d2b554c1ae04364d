"""What a ``predict`` run was asked to do, and the state an interrupted run leaves for ``--resume``.

Split from :mod:`blgenre.models.predict`: every output path is checked here before any work
(``check_paths``), and the state file written after every chunk records how many records are
done and how many bytes of each output are complete, with the input's size and modification
time and the settings a resumed run must share.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from blgenre.errors import InputError
from blgenre.models import marc_out as catalogue
from blgenre.models.predict_io import check_output, detect_format

CHUNK_SIZE = 10_000
STATE_VERSION = 1


@dataclass
class Options:
    """What one ``predict`` run was asked to do (kept in the state file for ``--resume``)."""

    model: str
    input: str
    output: str
    input_format: str = "auto"
    title_column: str | None = None
    id_column: str | None = None
    marc_out: str | None = None
    review_out: str | None = None
    precision: float = catalogue.TARGET_PRECISION
    genre_source: str = catalogue.GENRE_SOURCE
    batch_size: int = 256
    chunk_size: int = CHUNK_SIZE
    fast: bool = False
    resume: bool = False
    overwrite: bool = False
    progress: bool | None = None  #: ``None``: a bar only when stderr is a terminal
    streams: int | None = None  #: prediction processes; ``None``: the kind's own, cores permitting

    def outputs(self) -> dict[str, Path]:
        out = {"predictions": Path(self.output)}
        if self.marc_out:
            out["marc"] = Path(self.marc_out)
            out["review"] = Path(self.review_out) if self.review_out else \
                Path(self.output).with_name(Path(self.output).stem + "-review.csv")
        return out

    def identity(self) -> dict:
        """The settings a resumed run must share with the interrupted one."""
        keys = ("model", "input_format", "title_column", "id_column", "marc_out", "precision",
                "genre_source", "chunk_size", "fast")
        return {k: getattr(self, k) for k in keys} | {"review": str(self.outputs().get("review"))}


def partial_path(path: Path) -> Path:
    return path.with_name(path.name + ".partial")


def state_path(opts: Options) -> Path:
    return partial_path(Path(opts.output)).with_suffix(".partial.json")


def _input_fingerprint(path: Path) -> dict:
    stat = path.stat()
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


@dataclass
class Counts:
    """What happened to the records so far (saved with the state, printed at the end)."""

    records: int = 0
    classified: int = 0
    no_title: int = 0
    cut: int = 0
    non_latin: int = 0
    automatic: int = 0
    review: int = 0
    by_label: dict = field(default_factory=dict)
    model: str = ""  #: the model's name and version, with the copy that predicted (``--fast``)


def write_state(opts: Options, counts: Counts, sizes: dict[str, int]) -> None:
    path = state_path(opts)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"version": STATE_VERSION, "input": _input_fingerprint(
        Path(opts.input)), "options": opts.identity(), "counts": asdict(counts),
        "bytes": sizes}, indent=1))
    os.replace(tmp, path)


def check_paths(opts: Options) -> dict | None:
    """Check every output path before any work; the saved state when resuming, else ``None``."""
    src = Path(opts.input)
    detect_format(src, opts.input_format)  # input exists and is a file
    outputs = opts.outputs()
    names = list(outputs.values())
    for what, path in outputs.items():
        check_output(path, [src, *[p for p in names if p is not path]], what)
    if opts.marc_out:
        catalogue.marc_kind(opts.marc_out)
    state_file = state_path(opts)
    partials = [partial_path(p) for p in names if partial_path(p).exists()]
    if opts.resume and state_file.is_file():
        state = json.loads(state_file.read_text())
        if state.get("input") != _input_fingerprint(src):
            raise InputError(f"{src}: the input changed since the interrupted run (size or "
                             "modification time); start again with --overwrite")
        if state.get("options") != opts.identity():
            raise InputError(f"{opts.output}: the interrupted run used other settings "
                             f"({state_file}); use them again, or start again with --overwrite")
        return state
    if not opts.overwrite:
        if partials or state_file.exists():
            left = partials[0] if partials else state_file
            raise InputError(f"{opts.output}: an interrupted run left {left}; pass --resume to "
                             "continue it or --overwrite to start again")
        for path in names:
            if path.exists():
                raise InputError(f"{path}: already exists; pass --overwrite to replace it"
                                 + ("" if opts.resume else " (or --resume to continue an "
                                    "interrupted run)"))
    return None
