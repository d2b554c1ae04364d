"""Predicting genres for a whole collection with any saved model: the engine of ``blgenre predict``.

Serves the chapters 'Using the model' and 'Your own collection'. The input (MARC, CSV/TSV or a
list of titles; :mod:`blgenre.models.predict_io`) is streamed in chunks, so memory stays flat
whatever its size. Inside a chunk titles are sorted by length (neural models then pad less) and
put back in input order before they are written. The output CSV has one row per input record,
in input order: ``record_id, title, label, prob_<label>... , model, model_version, note``
(``model_version``: the weights' sha256, and the copy that predicted, :func:`model_identity`). A
record without a usable title keeps its row, unlabelled, with the reason in ``note``.

Output is written as it goes, to ``<output>.partial`` files, with a small state file
(``<output>.partial.json``) updated after every chunk: how many records are done and how many
bytes of each output are complete. An interrupted run continues with ``--resume``: the partial
files are cut back to the last complete chunk and the input is read on from there, so no row is
lost or written twice. Only when everything is written are the partial files renamed to their
final names. Optionally (``--marc-out``) a copy of MARC records gets genre terms for the
records the model is confident about, and the rest go to a review list
(:mod:`blgenre.models.marc_out`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from blgenre.data.text import MAX_TITLE_CHARS, clean_titles
from blgenre.errors import InputError
from blgenre.models import marc_out as catalogue
from blgenre.models.lifecycle import Classifier, load_model, model_labels, read_meta
from blgenre.models.predict_io import (
    SCRIPT_CAUTION,
    count_records,
    detect_format,
    has_no_latin_letters,
    neutralise,
    read_items,
    slug,
)
from blgenre.models.predict_options import (  # noqa: F401 - Options is this module's API too
    CHUNK_SIZE,
    Counts,
    Options,
    check_paths,
    partial_path,
    state_path,
    write_state,
)
from blgenre.models.predict_streams import Worker, share_threads, spread, streams_for


def output_columns(labels: list[str]) -> list[str]:
    """The prediction CSV's columns for a model with ``labels``."""
    return ["record_id", "title", "label", *[f"prob_{slug(label)}" for label in labels],
            "model", "model_version", "note"]


def predict_titles(model: Classifier, titles: list[str], batch_size: int = 256,
                   overlap: bool = True) -> pd.DataFrame:
    """Predict every non-blank title, longest-last inside ``titles``; blank titles stay unlabelled.

    ``overlap``: tokenise the next block in a second thread (:func:`predict_blocks`); off when
    each process of a two-process run has one core to itself.

    Returns ``title``, ``label`` and one ``prob_<label>`` column per label, in input order.
    """
    labels = model_labels(model.meta)
    cleaned = clean_titles(titles)
    keep = [i for i, t in enumerate(cleaned) if t]
    keep.sort(key=lambda i: len(cleaned[i]))  # length-sorted: neural models pad less
    probs = np.full((len(cleaned), len(labels)), np.nan)
    blocks = [keep[start:start + batch_size] for start in range(0, len(keep), batch_size)]
    texts = [[cleaned[i] for i in idx] for idx in blocks]
    for idx, block_probs in zip(blocks, predict_blocks(model, texts, overlap), strict=True):
        probs[idx] = block_probs
    known = ~np.isnan(probs[:, 0])
    best = np.where(known, np.nan_to_num(probs).argmax(axis=1), 0)
    label = np.where(known, np.asarray(labels, dtype=object)[best], "")
    columns = {f"prob_{slug(lab)}": probs[:, j] for j, lab in enumerate(labels)}
    return pd.DataFrame({"title": list(titles), "label": label, **columns})


def predict_blocks(model: Classifier, blocks: list[list[str]], overlap: bool = True):
    """``model.predict_proba`` of each block of titles, in order.

    A model that splits its work into ``prepare`` (tokenising: Python, holding the interpreter
    lock) and ``predict_prepared`` (the network: compiled code, releasing it) has the next
    block prepared in a second thread while the current one is predicted, so that on a
    two-core machine both cores work (unless not ``overlap``). The answers are the same as one
    block at a time.
    """
    prepare = getattr(model, "prepare", None) if overlap else None
    if prepare is None or len(blocks) < 2:
        for block in blocks:
            yield model.predict_proba(block)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="blgenre-prepare") as pool:
        pending = pool.submit(prepare, blocks[0])
        for k in range(len(blocks)):
            prepared = pending.result()
            if k + 1 < len(blocks):
                pending = pool.submit(prepare, blocks[k + 1])
            yield model.predict_prepared(prepared)


def faster(model: Classifier) -> Classifier:
    """The model's cheaper CPU inference variant (``--fast``), or the model itself if it has none.

    The transformer has one (chapter 'Inference at scale'); the baseline is already fast.
    """
    make = getattr(model, "fast", None)
    return make() if callable(make) else model


def model_identity(folder: str | Path, copy: str = "plain") -> tuple[str, str]:
    """``(name, version)`` written beside every prediction: the folder's name and the first
    12 hex digits of the sha256 of the model's weights (which exact model made it), followed by
    ``+`` and the cheaper copy that predicted, if one did (``--fast``: ``+onnx-int8-student``,
    whose probabilities differ a little from the model's own)."""
    from blgenre.models import registry

    meta = read_meta(folder)
    main = registry.get(meta["kind"]).main_file
    digest = meta.get("files", {}).get(main) or hashlib.sha256(
        json.dumps(meta.get("files", {}), sort_keys=True).encode()).hexdigest()
    name = meta.get("name") or Path(folder).resolve().name
    return str(name), f"sha256:{digest[:12]}" + ("" if copy == "plain" else f"+{copy}")


# --------------------------------------------------------------------------- writing
def _csv_text(rows: list[list]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode("utf-8")


def titles_of(items: list) -> list[str]:
    return [item.title or "" for item in items]


def _prob(value: float) -> str:
    return "" if np.isnan(value) else f"{value:.6f}"


class Run:
    """One ``predict`` run: the model, the open partial files and the counts."""

    def __init__(self, opts: Options, state: dict | None):
        self.opts = opts
        self.state = state
        self.outputs = opts.outputs()
        self.streams = streams_for(read_meta(opts.model)["kind"], opts.streams)
        # the worker's process starts with the first chunk it is given, while this process
        # predicts the chunk before (a one-chunk input never starts it)
        self.worker = Worker(opts.model, opts.fast, self.streams) if self.streams > 1 else None
        try:
            self._load(opts, state)
        except BaseException:
            if self.worker is not None:
                self.worker.close()
            raise

    def _load(self, opts: Options, state: dict | None) -> None:
        model = load_model(opts.model)
        self.model = faster(model) if opts.fast else model
        share_threads(self.streams, self.model)
        self.labels = model_labels(model.meta)
        self.name, self.version = model_identity(opts.model,
                                                 self.model.meta.get("variant", "plain"))
        self.counts = Counts(**state["counts"]) if state else Counts()
        self.counts.model = f"{self.name} {self.version}"
        self.thresholds = None
        if opts.marc_out:
            # thresholds from the variant that predicts (--fast too): its own probabilities
            y, p = catalogue.validation_probabilities(self.model, opts.model)
            self.thresholds = catalogue.precision_thresholds(y, p, self.labels, opts.precision)
        self.marc_kind = catalogue.marc_kind(opts.marc_out) if opts.marc_out else None
        self.files: dict[str, object] = {}

    # ---- files
    def open(self) -> None:
        sizes = self.state["bytes"] if self.state else {}
        for key, final in self.outputs.items():
            path = partial_path(final)
            if self.state:
                with open(path, "r+b") as fh:
                    fh.truncate(sizes[key])  # drop whatever the last, unfinished chunk wrote
                self.files[key] = open(path, "ab")
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            fh = self.files[key] = open(path, "wb")
            if key == "predictions":
                fh.write(_csv_text([output_columns(self.labels)]))
            elif key == "review":
                fh.write(_csv_text([catalogue.REVIEW_COLUMNS]))
            elif self.marc_kind == "xml":
                fh.write(catalogue.XML_HEAD)

    def sizes(self) -> dict[str, int]:
        for fh in self.files.values():
            fh.flush()
            os.fsync(fh.fileno())
        return {key: fh.tell() for key, fh in self.files.items()}

    def close(self) -> None:
        for fh in self.files.values():
            fh.close()

    # ---- one chunk
    def predict(self, items: list) -> pd.DataFrame:
        return predict_titles(self.model, titles_of(items), self.opts.batch_size,
                              overlap=self.streams == 1)

    def write(self, items: list, result: pd.DataFrame) -> None:
        """The chunk's rows (and MARC records, review rows), then the state for ``--resume``."""
        c = self.counts
        titles = titles_of(items)
        probs = result[[f"prob_{slug(lab)}" for lab in self.labels]].to_numpy()
        predicted = result["label"].tolist()
        known = ~np.isnan(probs[:, 0])
        auto = np.zeros(len(items), dtype=bool)
        if self.thresholds is not None and known.any():
            auto[known] = catalogue.automatic(probs[known], self.thresholds)
        rows, review, marc = [], [], []
        for i, item in enumerate(items):
            notes = []
            if not known[i]:
                notes.append(item.problem or "blank title")
                c.no_title += 1
            else:
                c.classified += 1
                c.by_label[predicted[i]] = c.by_label.get(predicted[i], 0) + 1
                if len(titles[i]) > MAX_TITLE_CHARS:
                    notes.append(f"title cut to {MAX_TITLE_CHARS} characters")
                    c.cut += 1
                if has_no_latin_letters(titles[i]):
                    notes.append("no Latin-script letters: treat with caution")
                    c.non_latin += 1
            rows.append([neutralise(item.record_id), neutralise(titles[i]),
                         predicted[i], *[_prob(v) for v in probs[i]],
                         neutralise(self.name), self.version, neutralise("; ".join(notes))])
            if self.thresholds is None:
                continue
            if auto[i]:
                c.automatic += 1
                catalogue.add_genre(item.record, predicted[i], float(np.nanmax(probs[i])),
                                   f"blgenre {self.name} {self.version}", self.opts.genre_source)
            else:
                c.review += 1
                top = int(np.nanargmax(probs[i])) if known[i] else None
                review.append([
                    neutralise(item.record_id), neutralise(titles[i]),
                    self.labels[top] if top is not None else "",
                    _prob(probs[i, top]) if top is not None else "",
                    "" if top is None else f"{self.thresholds['threshold'].iat[top]:.6f}",
                    neutralise("; ".join(notes) or "below the threshold for "
                               f"{self.opts.precision:.0%} precision")])
            if item.record is not None:
                marc.append(catalogue.record_bytes(item.record, self.marc_kind))
        c.records += len(items)
        self.files["predictions"].write(_csv_text(rows))
        if self.thresholds is not None:
            self.files["review"].write(_csv_text(review))
            self.files["marc"].write(b"".join(marc))
        write_state(self.opts, c, self.sizes())

    def finish(self) -> None:
        if self.marc_kind == "xml":
            self.files["marc"].write(catalogue.XML_TAIL)
        self.sizes()
        self.close()
        for key, final in self.outputs.items():
            if key == "review":
                catalogue.sort_review(partial_path(final), final)
                partial_path(final).unlink()
            else:
                os.replace(partial_path(final), final)
        state_path(self.opts).unlink(missing_ok=True)

    def discard(self) -> None:
        self.close()
        for final in self.outputs.values():
            partial_path(final).unlink(missing_ok=True)
        state_path(self.opts).unlink(missing_ok=True)


def _progress(opts: Options, fmt: str, done: int):
    from tqdm import tqdm

    enabled = sys.stderr.isatty() if opts.progress is None else opts.progress
    total = count_records(opts.input, fmt) if enabled else None
    return tqdm(total=total, initial=done, unit=" titles", disable=not enabled,
                dynamic_ncols=True, smoothing=0.1, file=sys.stderr)


def run_predict(opts: Options) -> Counts:
    """Run (or resume) a prediction over a collection; return the counts."""
    state = check_paths(opts)
    fmt = detect_format(opts.input, opts.input_format)
    if opts.marc_out and fmt != "marc":
        raise InputError(f"{opts.input}: --marc-out needs MARC input (MARCXML or binary MARC); "
                         f"this file reads as {fmt}")
    run = Run(opts, state)
    done = run.counts.records
    items = read_items(opts.input, fmt, opts.title_column, opts.id_column)
    items = itertools.islice(items, done, None)
    run.open()
    bar = _progress(opts, fmt, done)
    chunks = iter(lambda: list(itertools.islice(items, opts.chunk_size)), [])
    worker = run.worker
    there = (lambda chunk: worker.submit(titles_of(chunk), opts.batch_size)) if worker else None
    try:
        for chunk, result in spread(chunks, run.predict, there):
            run.write(chunk, result)
            bar.update(len(chunk))
        bar.close()
        if run.counts.classified == 0:
            what = ("no record has a usable title (245 $a)" if fmt == "marc"
                    else "input file is empty: no titles to classify" if not run.counts.records
                    else f"the title column {opts.title_column or 'title'!r} is empty in every row"
                    if fmt in ("csv", "tsv") else "input file is empty: no titles to classify")
            raise InputError(f"{opts.input}: {what}")
        run.finish()
    except KeyboardInterrupt:
        bar.close()
        run.close()
        raise
    except Exception:
        bar.close()
        run.discard()
        raise
    finally:
        if worker is not None:
            worker.close()
    return run.counts


def notes(counts: Counts) -> list[str]:
    """Human-readable notes about unlabelled, cut and non-Latin titles, for the CLI to print."""
    out = []
    if counts.no_title:
        out.append(f"{counts.no_title} record(s) without a usable title left unlabelled "
                   "(reason in the 'note' column)")
    if counts.cut:
        out.append(f"{counts.cut} title(s) longer than {MAX_TITLE_CHARS} characters were cut")
    if counts.non_latin:
        out.append(f"{counts.non_latin} {SCRIPT_CAUTION}")
    return out


def predict_file(model_dir: str | Path, input_path: str | Path, output_path: str | Path,
                 batch_size: int = 256, fast: bool = False, overwrite: bool = False,
                 **options) -> pd.DataFrame:
    """Predict a file with the model in ``model_dir``; return the output CSV as a table."""
    run_predict(Options(str(model_dir), str(input_path), str(output_path), batch_size=batch_size,
                        fast=fast, overwrite=overwrite, progress=False, **options))
    return pd.read_csv(output_path, dtype={"record_id": str, "title": str, "label": str,
                                           "note": str}, keep_default_na=False,
                       na_values={c: [""] for c in ("prob_fiction", "prob_non_fiction")})
