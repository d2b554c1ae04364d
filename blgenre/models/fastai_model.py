"""The saved fastai ULMFiT classifier (chapters 'Training a fastai ULMFiT model', 'Using the model').

:class:`FastaiModel` is the registry's ``fastai`` kind: ``learn.export()`` writes
``artifacts/models/fastai/model.pkl`` and ``model.json`` records its sha256, which is checked
before the pickle is ever opened. The recipe lives in :mod:`blgenre.models.fastai_training`, the
settings in :mod:`blgenre.models.fastai_config`; their public names are re-exported here for
the chapters (``from blgenre.models import fastai_model as fm``).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pandas as pd

from blgenre.data import LABELS
from blgenre.data.text import clean_titles
from blgenre.errors import ModelError
from blgenre.models import fastai_fast
from blgenre.models.fastai_config import (  # noqa: F401
    HISTORY_FILE,
    MODEL_FILE,
    NAME,
    PRETRAINED_PATHS,
    FastaiConfig,
    History,
    _quiet,
    _threads,
    default_config,
    fastai_home,
)
from blgenre.models.fastai_training import (  # noqa: F401
    compare_settings,
    lm_corpus,
    tokenize,
    train_fastai,
    wt103_status,
    wt103_url,
)
from blgenre.models.stable_files import (
    fixed_serialization_id,
    portable_learner,
    sorted_stop_words,
)
from blgenre.paths import model_dir
from blgenre.runinfo import stable

# --------------------------------------------------------------------------------------------
# The saved model


class FastaiModel:
    """An exported fastai text classifier with the book's ``predict_proba`` interface."""

    #: torch CPU threads used for prediction (see :func:`_threads`).
    threads = 1

    kind = NAME

    def __init__(self, learn, meta: dict | None = None, history: History | None = None):
        self.learn = learn
        self.meta = meta or {"kind": NAME}
        self.history = history or History()
        # fastai's Learner keeps per-call state (callbacks, progress bar): one caller at a time
        self._lock = threading.Lock()
        self.network = None  # the torch module that predicts (an int8 copy for ``fast``)
        self._index = None  # the vocabulary as token -> id (made on first use)

    @classmethod
    def run_settings(cls) -> dict:
        """The settings a saved model must share to be reused (workshop or book settings)."""
        return default_config().as_dict()

    @classmethod
    def train_on_split(cls, train: pd.DataFrame, valid: pd.DataFrame,
                       config: FastaiConfig | None = None,
                       lm_titles: list[str] | None = None) -> FastaiModel:
        """Train on the split (LM: train + valid titles and other non-test catalogue titles).

        In workshop mode, unless ``config`` is given, both stages train for fewer epochs. The
        classifier keeps every training title: trained from scratch on fewer, it guessed one
        class. ``lm_titles`` replaces the book's language-model corpus (a reader's own data:
        ``blgenre train``); the labels are those of ``train`` (two or more).
        """
        from blgenre import settings
        from blgenre.data import split

        cfg = config or default_config()
        if lm_titles is not None:
            return train_fastai(train, valid, lm_titles, cfg, extra_meta={
                "lm_sources": {"own titles": len(lm_titles)}, "workshop": settings.workshop()})
        titles, sources = lm_corpus(max_titles=cfg.max_lm_titles, seed=cfg.seed,
                                     pool_titles=cfg.lm_pool_titles)
        return train_fastai(train, valid, titles, cfg,
                            data_sha256=split.split_info()["split_sha256"],
                            extra_meta={"lm_sources": sources, "workshop": settings.workshop()})

    def save(self, folder: str | Path | None = None, **info) -> Path:
        """Export the learner (a pickle), its training history and ``model.json``."""
        from blgenre.models.lifecycle import training_info, write_meta

        folder = Path(folder) if folder else model_dir(self.kind)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in (folder / MODEL_FILE, folder / HISTORY_FILE):
            stale.unlink(missing_ok=True)
        # the same bytes from every run with these weights (blgenre.models.stable_files)
        with _quiet(), sorted_stop_words(), portable_learner(self.learn):
            self.learn.export(folder.resolve() / MODEL_FILE)
        fixed_serialization_id(folder / MODEL_FILE)
        # without its durations (they are in model.json): a hashed file, the same in every build
        (folder / HISTORY_FILE).write_text(json.dumps(stable(self.history.as_dict())))
        self.meta = write_meta(folder, self.kind, [MODEL_FILE, HISTORY_FILE], **{
            **training_info(self.meta), "model_bytes": (folder / MODEL_FILE).stat().st_size,
            **info})
        return folder

    def evaluation_extra(self, folder: str | Path) -> dict:
        """Facts about training to keep beside the test metrics."""
        meta = self.meta
        seconds = meta.get("seconds", {})
        return {
            "pretraining": meta.get("pretraining"),
            "lm_seconds": seconds.get("language model"),
            "classifier_seconds": seconds.get("classifier"),
            "train_seconds": seconds.get("total"),
            "model_bytes": meta.get("model_bytes"),
            "vocab_size": meta.get("vocab_size"),
            "valid_macro_f1": meta.get("valid_macro_f1"),
        }

    @classmethod
    def load(cls, folder: str | Path) -> FastaiModel:
        """Load ``folder/model.pkl`` after checking its sha256 against ``model.json``."""
        from blgenre.models.lifecycle import checked_meta

        folder = Path(folder)
        meta = checked_meta(folder, cls.kind)  # before unpickling: the pickle runs code when loaded
        with _quiet():
            from fastai.learner import load_learner

            try:
                learn = load_learner(folder / MODEL_FILE, cpu=True)
            except Exception as exc:  # a pickle that matches its hash but does not load
                raise ModelError(f"{folder / MODEL_FILE}: cannot be loaded as a fastai model "
                                 f"({type(exc).__name__}: {exc})") from None
        history = History()
        if (folder / HISTORY_FILE).is_file():
            history = History(**json.loads((folder / HISTORY_FILE).read_text()))
        return cls(learn, meta, history)

    def _tokenize(self, texts: list[str]) -> list[list[str]]:
        """Tokens of ``texts`` with the learner's own tokenizer and rules."""
        from fastai.text.all import Tokenizer, TokenizeWithRules

        tok = next(t for t in self.learn.dls.valid_ds.tls[0].tfms if isinstance(t, Tokenizer))
        return [list(t) for t in TokenizeWithRules(tok.tok, rules=tok.rules)(texts)]

    @property
    def labels(self) -> list[str]:
        """The labels of the probability columns (``meta["labels"]``; Fiction, Non-fiction)."""
        return list(self.meta.get("labels") or LABELS)

    def predict_proba(self, titles: list[str], batch_size: int = 64) -> np.ndarray:
        """Probabilities of each label (Fiction, Non-fiction) for each title, shape ``(n, labels)``.

        Titles are cleaned like everywhere else in the book (:func:`blgenre.data.text.clean_title`:
        control characters removed, cut to 1,000 characters). An empty title is scored as an
        empty sequence: a defined answer that carries no information (the CLI and
        :func:`blgenre.models.predict.predict_titles` leave blank titles unlabelled instead).
        """
        return self.predict_prepared(self.prepare(titles), batch_size)

    def prepare(self, titles: list[str]) -> list[list[str]]:
        """The cleaned titles' tokens: the first half of :meth:`predict_proba`, which
        :func:`blgenre.models.predict.predict_blocks` runs beside the network's work."""
        texts = clean_titles(titles)
        # the whole list in one spaCy pass (the training path), not title by title
        return self._tokenize(texts) if texts else []

    def predict_prepared(self, tokens: list[list[str]], batch_size: int = 64) -> np.ndarray:
        """The second half of :meth:`predict_proba`: probabilities for :meth:`prepare`'s tokens.

        Numericalised, padded and run through the network without fastai's data loader
        (:mod:`blgenre.models.fastai_fast`: the same numbers, in less time). A title longer
        than the classifier's chunk is read alone, so every title gets the same answer
        whatever else is in its batch.
        """
        if not tokens:
            return np.empty((0, len(self.labels)))
        if self._index is None:
            self._index = fastai_fast.vocab_index(self.learn)
        bptt = getattr(self.learn.model[0], "bptt", 72)
        with self._lock, _quiet(), _threads(self.threads):
            if self.network is None:
                self.network = self.learn.model.eval()
            probs = fastai_fast.predict_tokens(self.network, tokens, *self._index, bptt,
                                               batch_size)
        vocab = list(self.learn.dls.vocab[1])
        probs = probs[:, [vocab.index(label) for label in self.labels]]
        return probs / probs.sum(axis=1, keepdims=True)

    # ---- a cheaper CPU variant
    def variant(self, name: str) -> FastaiModel:
        """``plain`` (this model) or ``int8`` (LSTM and linear weights in 8-bit integers)."""
        if name == "plain":
            return self
        if name != "int8":
            raise ValueError(f"unknown variant {name!r}; expected 'plain' or 'int8'")
        other = FastaiModel(self.learn, {**self.meta, "variant": name}, self.history)
        other.network = fastai_fast.int8_network(self.learn.model)
        return other

    def fast(self) -> FastaiModel:
        """The int8 variant if it passed its check on the validation split at training time
        (:func:`blgenre.models.fastai_fast.int8_check`), else this model."""
        if self.meta.get(fastai_fast.CHECK_KEY, {}).get("passed"):
            return self.variant("int8")
        return self


def verdict(meta: dict, diff: float, n_languages: int, lm_titles: int, lm_tokens: int,
            n_train: int) -> str:
    """One paragraph on why the model did as it did against the baseline (``diff`` = its lead)."""
    if meta["pretraining"] == "titles-only" and diff < 0:
        return (
            f"Without WikiText-103 the network has to learn English, and the {n_languages - 1} "
            f"other languages of the catalogue, from {lm_titles:,} short titles: {lm_tokens:,} "
            "tokens, thousands of times less text than ULMFiT's first stage reads. That is too "
            "little for the language model to learn much that TF-IDF features do not already "
            f"capture from the same titles; and a network of {meta['parameters'] / 1e6:.1f} "
            f"million weights, trained on {n_train:,} labelled titles, is harder to fit reliably "
            "than a linear model. The lesson is ULMFiT's own: its gains come from general-domain "
            "pretraining, which this build could not do. Run the chapter online to get it.")
    if meta["pretraining"] == "titles-only":
        return ("Even without WikiText-103, learning from the titles alone was enough to match "
                "the baseline here; with the pretrained weights it may do better still.")
    if diff < 0:
        return ("Even with WikiText-103 pretraining the classifier does not beat the baseline "
                "here. Catalogue titles are short, terse and often not in English, unlike the "
                "Wikipedia articles the language model first learned from.")
    return ("The general-domain pretraining pays off: the classifier knows words and phrasings "
            "that never occur in the training titles.")


# --------------------------------------------------------------------------------------------
# Figures


def plot_lr_find(history: History):
    """The ``lr_find`` curves with the chosen learning rates marked."""
    import matplotlib.pyplot as plt

    curves = {k: v for k, v in history.lr_find.items() if v}
    fig, axes = plt.subplots(1, max(len(curves), 1), figsize=(4.2 * max(len(curves), 1), 3.2))
    axes = np.atleast_1d(axes)
    for ax, (name, c) in zip(axes, curves.items(), strict=False):
        ax.plot(c["lr"], c["loss"], color="#4d7ea8")
        ax.set_xscale("log")
        ax.axvline(c["chosen"], color="#b2182b", ls="--", label=f"chosen {c['chosen']:.0e}")
        if c.get("valley"):
            ax.axvline(c["valley"], color="grey", ls=":", label=f"valley {c['valley']:.0e}")
        lo = min(c["loss"])
        ax.set_ylim(lo - 0.1 * abs(lo), min(max(c["loss"]), lo + 3 * (c["loss"][0] - lo + 0.1)))
        ax.set_xlabel("learning rate (log scale)")
        ax.set_ylabel("training loss (smoothed)")
        ax.set_title(f"lr_find: {name}")
        ax.legend(fontsize=8)
    return fig


#: Short names of the gradual-unfreezing stages for figures.
STAGE_LABELS = {"freeze_to(-1)": "-1", "freeze_to(-2)": "-2", "freeze_to(-3)": "-3",
                "unfreeze": "all"}


def plot_training(history: History):
    """Training and validation loss per epoch for the language model and the classifier."""
    import matplotlib.pyplot as plt

    df = history.epochs_frame()
    models = list(dict.fromkeys(df["model"]))
    fig, axes = plt.subplots(1, len(models), figsize=(4.6 * len(models), 3.4))
    axes = np.atleast_1d(axes)
    for ax, name in zip(axes, models, strict=True):
        d = df[df["model"] == name]
        ax.plot(d["epoch"], d["train_loss"], "o-", label="training loss", color="#4d7ea8")
        ax.plot(d["epoch"], d["valid_loss"], "s-", label="validation loss", color="#b2182b")
        if "f1_score" in d:
            ax2 = ax.twinx()
            ax2.plot(d["epoch"], d["f1_score"], "^--", color="#1b7837", label="valid macro-F1")
            ax2.set_ylim(0, 1)
            ax2.set_ylabel("validation macro-F1", color="#1b7837")
        stages = list(dict.fromkeys(d["stage"]))
        for i, stage in enumerate(stages):
            g = d[d["stage"] == stage]
            if i:
                ax.axvline(g["epoch"].min() - 0.5, color="grey", lw=0.8, ls=":")
            if len(stages) > 1:
                ax.text(g["epoch"].mean(), ax.get_ylim()[1], STAGE_LABELS.get(stage, stage),
                        ha="center", va="bottom", fontsize=8)
        ax.set_xlabel("epoch")
        ax.set_ylabel("cross-entropy loss")
        ax.set_title(name if len(stages) == 1 else f"{name}: freeze_to(-1), (-2), (-3), all",
                     pad=14)
        ax.legend(fontsize=8, loc="center right")
    return fig

