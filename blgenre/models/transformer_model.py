"""The fine-tuned transformer as the registry's ``transformer`` kind (chapters 'Fine-tuning a
transformer' and 'Inference at scale').

The recipe (checkpoint choice, tokens, the ``Trainer``, the learning-rate search) lives in
:mod:`blgenre.models.transformer_training`; its public names are re-exported here for the
chapters (``from blgenre.models import transformer_model as tm``).

:class:`TransformerModel` predicts in length-sorted batches and has a cheaper CPU variant
(:meth:`TransformerModel.variant`) that ``blgenre predict --fast`` uses; :func:`benchmark`
measures both (chapter 'Inference at scale').
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from blgenre import settings
from blgenre.data.text import clean_titles
from blgenre.evaluation.evaluate import labels_from_proba, macro_f1
from blgenre.models.lifecycle import META_FILE, checked_meta, label_set, training_info, write_meta
from blgenre.models.transformer_training import (  # noqa: F401
    BATCH_SIZE,
    ID2LABEL,
    LABEL2ID,
    MAX_LENGTH,
    OFFLINE_CHECKPOINT_NAME,
    OFFLINE_PACKAGE,
    ONLINE_CHECKPOINT,
    RUN_LR,
    SEARCH,
    Checkpoint,
    FineTuneResult,
    SearchResult,
    _quiet_transformers,
    curves,
    encode,
    fine_tune,
    load_tokenizer,
    padding_table,
    plot_curves,
    resolve_checkpoint,
    search,
    token_lengths,
    token_table,
)
from blgenre.paths import metrics_path, model_dir

NAME = "transformer"
#: The cheaper CPU inference path when the model has no ONNX export (see :meth:`TransformerModel.fast`).
FAST_VARIANT = "int8"
#: With an ONNX export, ``--fast`` runs it in ONNX Runtime (chapter 'Inference at scale').
ONNX_FAST_VARIANT = "onnx-int8"
ONNX_VARIANTS = ("onnx-fp32", "onnx-int8")
#: What the fast path should reach on a two-core CPU: titles per second, and the most test
#: macro-F1 it may lose against the plain model.
TARGET_TITLES_PER_S = 300
MAX_F1_LOSS = 0.005
VARIANTS = ("plain", "int8", "bf16")
#: the key of ``model.json`` that records the bfloat16 copy's check (made on CPUs that have
#: bfloat16 instructions, where ``--fast`` uses it)
BF16_CHECK_KEY = "bf16_check"
#: A benchmark run this long is not repeated: competing programs cannot hide a variant that slow
#: (bfloat16 without native CPU support takes minutes), and the build stays short.
SLOW_RUN_SECONDS = 5.0



# --------------------------------------------------------------------------- batching
def native_bf16() -> bool:
    """Whether this CPU has bfloat16 instructions (AVX512-BF16 or AMX): without them PyTorch
    emulates bfloat16, and on the book's build machine that ran about ten times *slower* than
    float32, so the benchmark leaves it out there."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def padded_batches(enc, chunks, pad_id: int = 0):
    """``(rows, batch)`` for each array of title positions in ``chunks``: ``batch`` maps the
    tokenizer's input names in ``enc`` to int64 arrays padded to the chunk's longest title
    (``pad_id`` for token ids, 0 for the masks). Shared by prediction and the student's
    training (:mod:`blgenre.models.transformer_student`)."""
    keys = [k for k in ("input_ids", "token_type_ids", "attention_mask") if k in enc]
    for idx in chunks:
        width = max(len(enc["input_ids"][i]) for i in idx)
        batch = {}
        for key in keys:
            arr = np.full((len(idx), width), pad_id if key == "input_ids" else 0, dtype=np.int64)
            for row, i in enumerate(idx):
                seq = enc[key][i]
                arr[row, :len(seq)] = seq
            batch[key] = arr
        yield idx, batch


def predict_batched(tokenizer, titles: list[str], run, max_length: int = MAX_LENGTH,
                    batch_size: int = 64, sort: bool = True, n_labels: int = 2) -> np.ndarray:
    """Softmax probabilities per title, in input order, from ``run(batch) -> logits``.

    ``batch`` maps the tokenizer's input names to int64 arrays padded to the batch's longest
    title. Titles are tokenised once and, with ``sort``, batched by length (less padding). Shared
    by the PyTorch model and the ONNX Runtime one (:mod:`blgenre.models.onnx_runtime`).
    """
    titles = clean_titles(titles)
    out = np.zeros((len(titles), n_labels), dtype=np.float32)
    if not titles:
        return out
    enc = tokenizer(titles, truncation=True, max_length=max_length)
    lengths = np.array([len(ids) for ids in enc["input_ids"]])
    order = np.argsort(lengths, kind="stable") if sort else np.arange(len(titles))
    chunks = (order[start:start + batch_size] for start in range(0, len(order), batch_size))
    for idx, batch in padded_batches(enc, chunks, tokenizer.pad_token_id or 0):
        logits = np.asarray(run(batch), dtype=np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        out[idx] = exp / exp.sum(axis=1, keepdims=True)
    return out


# --------------------------------------------------------------------------- the model
class TransformerModel:
    """A fine-tuned sequence classifier and its tokenizer, with the lifecycle verbs of every kind."""

    kind = NAME

    @classmethod
    def run_settings(cls) -> dict:
        """What a saved model must share to be reused: checkpoint, search and workshop sample."""
        return {"checkpoint": resolve_checkpoint().name, "search": SEARCH,
                "max_length": MAX_LENGTH, "batch_size": BATCH_SIZE,
                "workshop_titles": settings.WORKSHOP_TRAIN_TITLES if settings.workshop() else None}

    @classmethod
    def train_on_split(cls, train: pd.DataFrame, valid: pd.DataFrame,
                       checkpoint: str | None = None, **search_kwargs) -> TransformerModel:
        """Search learning rate and epoch on validation; the chosen run, with its story in ``meta``.

        In workshop mode the search sees a sample of the training titles (see
        :func:`blgenre.settings.sample_train`).
        """
        train = settings.sample_train(train)
        found = search(train, valid, checkpoint, **search_kwargs)
        best = found.best
        history = found.history.astype(object).where(found.history.notna(), None)
        meta = {
            "kind": NAME,
            "labels": label_set(train["label"]),
            "checkpoint": found.checkpoint.name,
            "checkpoint_source": found.checkpoint.source,
            "offline": found.checkpoint.offline,
            "hyperparameters": {"learning_rate": best.learning_rate, "epochs": best.best_epoch,
                                "max_epochs": best.epochs},
            "settings": {k: v for k, v in best.settings.items() if k != "checkpoint"},
            "valid_macro_f1": best.valid_macro_f1,
            "search": found.table.to_dict(orient="records"),
            "search_history": history.to_dict(orient="records"),
            "search_seconds": found.seconds,
            "train_seconds": best.train_seconds,
            "epoch_seconds": best.epoch_seconds,
            "n_train": len(train),
            "parameters": int(sum(p.numel() for p in best.model.parameters())),
            "workshop": settings.workshop(),
        }
        return cls(best.model, best.tokenizer, meta,
                   max_length=best.settings.get("max_length", MAX_LENGTH))

    @property
    def search_table(self) -> pd.DataFrame:
        """One row per learning rate tried on validation (saved in ``model.json``)."""
        return pd.DataFrame(self.meta.get("search", []))

    @property
    def search_history(self) -> pd.DataFrame:
        """Every search run's training log (saved in ``model.json``), for :func:`curves`."""
        return pd.DataFrame(self.meta.get("search_history", [])).astype(float)

    def evaluation_extra(self, folder: str | Path) -> dict:
        """Facts about training to keep beside the test metrics."""
        keys = ("checkpoint", "checkpoint_source", "offline", "hyperparameters", "valid_macro_f1",
                "search_seconds", "train_seconds", "epoch_seconds", "parameters", "workshop")
        return {**{k: self.meta.get(k) for k in keys}, "model_bytes": folder_bytes(folder)}

    def __init__(self, model, tokenizer, meta: dict | None = None, max_length: int = MAX_LENGTH,
                 batch_size: int = 64, variant_name: str = "plain"):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.meta = meta or {"kind": NAME}
        self.max_length = max_length
        self.batch_size = batch_size
        self.variant_name = variant_name
        self.folder: Path | None = None  #: where it was saved or loaded from (ONNX exports)

    # ---- prediction
    def predict_proba(self, titles: list[str], batch_size: int | None = None,
                      sort: bool = True) -> np.ndarray:
        """Probabilities ``[Fiction, Non-fiction]`` per title, in input order.

        Titles are tokenised once, sorted by length and batched, so each batch is padded only to
        its own longest title; ``sort=False`` keeps input order (for comparison).
        """
        import torch

        def run(batch: dict[str, np.ndarray]) -> np.ndarray:
            with torch.inference_mode():
                tensors = {key: torch.from_numpy(arr) for key, arr in batch.items()}
                return self.model(**tensors).logits.float().numpy()

        return predict_batched(self.tokenizer, titles, run, self.max_length,
                               batch_size or self.batch_size, sort, self.model.config.num_labels)

    # ---- cheaper CPU variants
    def variant(self, name: str):
        """A copy for CPU inference: ``plain`` (float32), ``int8`` (PyTorch dynamic quantisation
        of the linear layers), ``bf16`` (bfloat16 weights and activations), or the saved model's
        ONNX export run by ONNX Runtime: ``onnx-fp32`` or ``onnx-int8``."""
        import torch

        if name not in VARIANTS + ONNX_VARIANTS:
            raise ValueError(f"unknown variant {name!r}; expected one of {VARIANTS + ONNX_VARIANTS}")
        if name == self.variant_name:
            return self
        if self.variant_name != "plain":
            raise ValueError("make variants from the plain (float32) model")
        if name in ONNX_VARIANTS:
            from blgenre.models import onnx_runtime

            return onnx_runtime.OnnxTransformer.from_model(self, name.removeprefix("onnx-"))
        model = copy.deepcopy(self.model)
        if name == "int8":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch.ao.quantization announces its move
                from torch.ao.quantization import quantize_dynamic

                model = quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        elif name == "bf16":
            model = model.to(torch.bfloat16)
        meta = {**self.meta, "variant": name}
        return TransformerModel(model, self.tokenizer, meta, self.max_length, self.batch_size,
                                name)

    def fast(self):
        """The fastest copy that keeps the model's accuracy on this CPU, for ``predict --fast``.

        The candidates are the copies that passed the check on the validation split every cheaper
        copy must pass (:mod:`blgenre.models.variant_checks`): the int8 file of the model's
        student, a copy with half the layers taught by this model
        (:mod:`blgenre.models.transformer_student`), else the model's own ONNX export, int8 or
        float32 (:mod:`blgenre.models.onnx_runtime`); and, on a CPU with bfloat16 instructions
        (:func:`native_bf16`), PyTorch in bfloat16 (its check made on first use there and kept in
        ``model.json``; without the book's data it is not made). Where both kinds are candidates,
        each is timed once on this CPU and the faster kept (:mod:`blgenre.models.fast_choice`).
        With none, PyTorch's own int8 variant (:data:`FAST_VARIANT`); ``torch.ao.quantization``
        is deprecated in favour of the separate ``torchao`` package, so if a future PyTorch lacks
        it this falls back to bfloat16.
        """
        from blgenre.models import fast_choice, onnx_runtime, transformer_student, variant_checks

        candidates = {}
        onnx = transformer_student.student_variant(self) or onnx_runtime.fast_variant(self)
        if onnx is not None:
            candidates[onnx.variant_name] = lambda: onnx
        if native_bf16() and variant_checks.passes(self, "bf16", BF16_CHECK_KEY):
            candidates["bf16"] = lambda: self.variant("bf16")
        if candidates:
            return fast_choice.fastest(self, candidates)
        try:
            return self.variant(FAST_VARIANT)
        except (ImportError, AttributeError):
            return self.variant("bf16")

    def state_bytes(self) -> int:
        """Size of the weights as ``torch.save`` writes them (quantised weights included)."""
        import io

        import torch

        buffer = io.BytesIO()
        torch.save(self.model.state_dict(), buffer)
        return buffer.tell()

    # ---- saving and loading
    def save(self, folder: str | Path | None = None, **info) -> Path:
        """``save_pretrained`` (safetensors, config with labels, tokenizer) plus ``model.json``."""
        if self.variant_name != "plain":
            raise ValueError("only the plain (float32) model is saved; variants are made on load")
        folder = Path(folder) if folder else model_dir(self.kind)
        if folder.exists():
            shutil.rmtree(folder)  # no stale files from an earlier run
        folder.mkdir(parents=True)
        self.model.save_pretrained(folder)
        self.tokenizer.save_pretrained(folder)
        files = sorted(p.name for p in folder.iterdir() if p.is_file() and p.name != META_FILE)
        for name in files:
            os.chmod(folder / name, 0o644)  # save_pretrained writes the weights as 0600
        kept = {k: v for k, v in training_info(self.meta).items()  # records of files made
                if k not in ("onnx", "student")}  # from the old weights: stale now
        self.meta = write_meta(folder, self.kind, files, **{**kept, **info})
        self.folder = folder
        return folder

    @classmethod
    def load(cls, folder: str | Path, fast: bool = False) -> TransformerModel:
        """Load a saved model after checking its files' hashes; ``fast`` picks the cheap variant."""
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        _quiet_transformers()
        meta = checked_meta(folder, cls.kind)
        model = AutoModelForSequenceClassification.from_pretrained(str(folder))
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
        loaded = cls(model, tokenizer, meta,
                     max_length=int(meta.get("settings", {}).get("max_length", MAX_LENGTH)))
        loaded.folder = Path(folder)
        return loaded.fast() if fast else loaded


def folder_bytes(folder: str | Path) -> int:
    """Total size of the files in a model folder."""
    return sum(p.stat().st_size for p in Path(folder).iterdir() if p.is_file())


# --------------------------------------------------------------------------- inference at scale
def benchmark(model: TransformerModel, titles: list[str], test: pd.DataFrame,
              batch_sizes: tuple[int, ...] | None = None,
              variants: tuple[str, ...] = VARIANTS, max_titles: int | None = None,
              n_single: int = 50, repeats: int | None = None, write: bool = True) -> dict:
    """Titles per second for each variant and batch size, and each variant's test macro-F1.

    Each setting is timed ``repeats`` times (default 2; 1 in workshop mode) on the first
    ``max_titles`` titles (default 400; 200 in workshop mode) at batch sizes 1 to 512 (to 128 in
    workshop mode, where 512 only repeats what 128 shows) and the fastest run is kept (as
    :mod:`timeit` does: slower runs measure other programs competing for the CPU, not the
    model); a run longer than :data:`SLOW_RUN_SECONDS` is not repeated. Batch size 1 is timed on
    the first ``n_single`` titles only. One run per variant in input order (at batch size 128)
    shows what length-sorting buys.
    """
    import torch

    repeats = repeats or (1 if settings.workshop() else 2)
    max_titles = max_titles or (200 if settings.workshop() else 400)
    batch_sizes = batch_sizes or ((1, 8, 32, 128) if settings.workshop() else (1, 8, 32, 128, 512))
    titles = clean_titles(titles)[:max_titles]
    variants = ("plain", *[v for v in variants if v != "plain"])  # the reference comes first
    rows, quality = [], {}
    plain_prob = None
    for name in variants:
        start = time.perf_counter()
        m = model.variant(name)
        prepare = time.perf_counter() - start
        m.predict_proba(titles[:64], batch_size=32)  # warm-up
        runs = [(bs, True) for bs in batch_sizes] + [(128, False)]
        for bs, sort in runs:
            subset = titles[:n_single] if bs == 1 else titles
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                m.predict_proba(subset, batch_size=bs, sort=sort)
                times.append(time.perf_counter() - start)
                if times[-1] > SLOW_RUN_SECONDS:  # so slow that noise cannot change the picture
                    break
            seconds = min(times)
            rows.append({"variant": name, "batch_size": bs, "sorted": sort, "titles": len(subset),
                         "seconds": round(seconds, 3), "median_seconds": float(np.median(times)),
                         "titles_per_s": len(subset) / seconds})
        prob = m.predict_proba(test["title"].tolist(), batch_size=128)[:, 0]
        if plain_prob is None:
            plain_prob = prob
        pred = labels_from_proba(prob)
        quality[name] = {
            "test_macro_f1": macro_f1(test["label"], pred),
            "agreement_with_plain": float((pred == labels_from_proba(plain_prob)).mean()),
            "max_abs_prob_diff": float(np.abs(prob - plain_prob).max()),
            "weights_mb": round(m.state_bytes() / 1e6, 1),
            "prepare_seconds": round(prepare, 2),
        }
    table = pd.DataFrame(rows)
    best_tps = table[table["sorted"]].groupby("variant")["titles_per_s"].max()
    for name in quality:
        quality[name]["best_titles_per_s"] = float(best_tps[name])
        quality[name]["macro_f1_loss"] = quality["plain"]["test_macro_f1"] - quality[name][
            "test_macro_f1"] if "plain" in quality else None
    result = {
        "n_titles": len(titles),
        "n_single": min(n_single, len(titles)),
        "repeats": repeats,
        "torch_threads": torch.get_num_threads(),
        "fast_variant": ONNX_FAST_VARIANT if ONNX_FAST_VARIANT in variants else FAST_VARIANT,
        "targets": {"titles_per_s": TARGET_TITLES_PER_S, "max_macro_f1_loss": MAX_F1_LOSS},
        "rows": table.to_dict(orient="records"),
        "quality": quality,
    }
    from blgenre import runinfo

    result["hardware"] = runinfo.hardware()
    if write:
        metrics_path("transformer_inference").write_text(json.dumps(result, indent=2))
    return result


def throughput_table(result: dict) -> pd.DataFrame:
    """Titles per second (length-sorted batches): one row per batch size, one column per variant."""
    table = pd.DataFrame(result["rows"])
    table = table[table["sorted"]]
    return table.pivot(index="batch_size", columns="variant", values="titles_per_s").round(0)


def quality_table(result: dict) -> pd.DataFrame:
    """Per variant: best speed, test macro-F1, change against plain, agreement, weight size."""
    df = pd.DataFrame(result["quality"]).T
    cols = ["best_titles_per_s", "test_macro_f1", "macro_f1_loss", "agreement_with_plain",
            "max_abs_prob_diff", "weights_mb"]
    return df[cols].astype(float).round(4)


def plot_throughput(result: dict, target: float | None = None):
    """Titles per second against batch size, one line per variant (log-scaled batch size)."""
    from blgenre.evaluation.plots import plt

    table = throughput_table(result)
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for variant in table.columns:
        ax.plot(table.index, table[variant], "o-", label=variant)
    if target:
        ax.axhline(target, color="grey", ls=":", lw=1)
        ax.text(table.index.min(), target, f" target {target:g}/s", va="bottom", fontsize=8,
                color="grey")
    ax.set_xscale("log", base=2)
    ax.set_xticks(table.index, [str(b) for b in table.index])
    ax.set_xlabel("batch size (titles)")
    ax.set_ylabel("titles per second")
    ax.set_title(f"Prediction speed, {result['torch_threads']} CPU thread(s)")
    ax.legend()
    return fig
