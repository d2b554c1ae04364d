"""Settings, run history and quiet, repeatable execution for the fastai model (chapter 'fastai').

Kept apart from the training recipe (:mod:`blgenre.models.fastai_training`) and the saved model
(:mod:`blgenre.models.fastai_model`) so that each can be read on its own. Nothing here runs at
import time: ``FASTAI_HOME`` is set the first time fastai is used (:func:`_quiet`).
"""

from __future__ import annotations

import os
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from blgenre.paths import artifacts_dir
from blgenre.seed import SEED

MODEL_FILE = "model.pkl"
HISTORY_FILE = "history.json"
NAME = "fastai"
PRETRAINED_PATHS = ("wikitext-103", "titles-only")


def fastai_home() -> Path:
    """Point ``FASTAI_HOME`` at ``artifacts/fastai_home`` (fastai reads it once, at first use)."""
    home = artifacts_dir("fastai_home")
    os.environ["FASTAI_HOME"] = str(home)
    return home


@contextmanager
def _threads(n: int):
    """Run torch on ``n`` CPU threads, then restore the previous setting.

    One thread is the default: on a busy 2-core machine two OpenMP threads that wait for each
    other made an AWD-LSTM batch 10-20 times slower, and a fixed thread count also keeps the
    floating-point sums, and so the numbers, the same from run to run.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextmanager
def _quiet():
    """No progress bars or fastai chatter in saved notebook outputs.

    Every use of fastai goes through here, so this is also where ``FASTAI_HOME`` is set: fastai
    caches its config folder the first time it needs it, and importing this module does nothing.
    """
    if "FASTAI_HOME" not in os.environ:
        fastai_home()
    import fastprogress.fastprogress as fp

    saved = fp.printing
    fp.printing = lambda: False
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*insecure pickle.*")
            warnings.filterwarnings("ignore", message=".*use_deterministic_algorithms.*")
            warnings.filterwarnings("ignore", message=".*deterministic.*", category=UserWarning)
            yield
    finally:
        fp.printing = saved


@dataclass
class FastaiConfig:
    """Everything that shapes a run. The defaults were chosen on the validation split."""

    #: ``"auto"`` (WikiText-103 if it can be downloaded, else titles only), ``"wikitext-103"``
    #: (fail if it cannot be downloaded) or ``"titles-only"`` (never try the download).
    pretrained: str = "auto"
    seed: int = SEED
    #: CPU threads for torch (see :func:`_threads`).
    threads: int = 1
    #: AWD-LSTM size for the titles-only path (the WikiText-103 weights fix 400 / 1152 / 3, a
    #: model about ten times larger and slower).
    emb_sz: int = 200
    n_hid: int = 512
    n_layers: int = 2
    #: Tokens seen at least this often get their own vocabulary entry.
    min_freq: int = 2
    max_lm_titles: int = 10_000
    #: Titles of the unlabelled collection added to the language model's corpus (ULMFiT's
    #: target-domain stage; never a validation or test book).
    lm_pool_titles: int = 0
    lm_valid_pct: float = 0.1
    lm_bs: int = 32
    lm_seq_len: int = 40
    lm_epochs: int = 15
    #: Language-model epochs when starting from WikiText-103 (1 frozen + the rest unfrozen).
    lm_epochs_pretrained: int = 2
    lm_lr: float = 3e-3
    lm_drop_mult: float = 0.5
    clas_bs: int = 32
    clas_seq_len: int = 72
    #: Epochs of the four gradual-unfreezing stages: last layer group, -2, -3, all.
    clas_epochs: tuple[int, int, int, int] = (2, 2, 2, 6)
    #: The same with WikiText-103 weights: fastai's IMDb recipe, and a network about ten times
    #: larger. (Not validated here: these machines cannot download the weights.)
    clas_epochs_pretrained: tuple[int, int, int, int] = (1, 1, 1, 2)
    clas_lr: float = 3e-2
    clas_drop_mult: float = 0.5
    #: Weight the loss by inverse class frequency (Fiction is the smaller class). It did not
    #: help on the validation split.
    class_weights: bool = False
    #: Iterations of ``lr_find`` before each training (0: skip it).
    lr_find_iters: int = 60
    wd: float = 0.1

    def lm_arch_config(self, pretrained: bool) -> dict:
        from fastai.text.all import awd_lstm_lm_config

        cfg = dict(awd_lstm_lm_config)
        if not pretrained:
            cfg.update(emb_sz=self.emb_sz, n_hid=self.n_hid, n_layers=self.n_layers)
        return cfg

    def clas_arch_config(self, pretrained: bool) -> dict:
        from fastai.text.all import awd_lstm_clas_config

        cfg = dict(awd_lstm_clas_config)
        if not pretrained:
            cfg.update(emb_sz=self.emb_sz, n_hid=self.n_hid, n_layers=self.n_layers)
        return cfg

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class History:
    """Per-epoch results, per-batch losses and ``lr_find`` curves of one run."""

    epochs: list[dict] = field(default_factory=list)
    batches: list[dict] = field(default_factory=list)
    lr_find: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)

    def record(self, learn, model: str, stage: str) -> None:
        rec = learn.recorder
        names = [n for n in rec.metric_names if n not in ("epoch", "time")]
        start = sum(1 for e in self.epochs if e["model"] == model)
        for i, values in enumerate(rec.values):
            row = {"model": model, "stage": stage, "epoch": start + i + 1}
            row.update({n: float(v) for n, v in zip(names, values, strict=False)})
            self.epochs.append(row)
        done = sum(1 for b in self.batches if b["model"] == model)
        for i, loss in enumerate(rec.losses):
            self.batches.append({"model": model, "stage": stage, "batch": done + i + 1,
                                 "loss": float(loss)})

    def epochs_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.epochs)

    def as_dict(self) -> dict:
        return asdict(self)


def default_config() -> FastaiConfig:
    """The book's settings, or shorter training in workshop mode (``BLGENRE_WORKSHOP=1``)."""
    from blgenre import settings

    if settings.workshop():
        # Measured on a 2-core CPU (validation macro-F1, training time): 8 LM epochs and
        # (1, 1, 1, 4) gave 0.70 in 95 s; 5 and (1, 1, 1, 2) guessed one class (0.43-0.53);
        # the book's settings reach about 0.82 in three minutes.
        return FastaiConfig(lm_epochs=8, lm_epochs_pretrained=1, clas_epochs=(1, 1, 1, 4),
                            clas_epochs_pretrained=(1, 0, 0, 1), lr_find_iters=30)
    return FastaiConfig()
