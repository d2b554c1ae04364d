"""The ULMFiT training recipe for the fastai model (chapter 'Training a fastai ULMFiT model').

1. **Language model.** An AWD-LSTM language model is trained on catalogue titles (every title
   the data has except the test split's). Online it starts from fastai's WikiText-103 weights;
   where they cannot be downloaded (offline, CI) it starts from random weights and learns from
   the titles alone. Which of the two happened is recorded as ``pretraining``
   (``"wikitext-103"`` or ``"titles-only"``) in ``model.json``.
2. **Classifier.** The language model's encoder gets a classification head and is trained on the
   training split with gradual unfreezing (``freeze_to(-1)``, ``-2``, ``-3``, ``unfreeze``),
   one-cycle schedules and discriminative learning rates (``slice``). Hyper-parameters were chosen
   on the validation split only.

Everything runs on a CPU with ``num_workers=0`` and fixed seeds, so two runs give the same
numbers.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from blgenre.data import LABELS
from blgenre.data.text import clean_titles
from blgenre.errors import ModelError
from blgenre.models import fastai_fast
from blgenre.models.fastai_config import (
    NAME,
    PRETRAINED_PATHS,
    FastaiConfig,
    History,
    _quiet,
    _threads,
)
from blgenre.seed import SEED, set_seed

# --------------------------------------------------------------------------------------------
# Data


def lm_corpus(books: pd.DataFrame | None = None, max_titles: int | None = None,
              seed: int = SEED, pool_titles: int = 0) -> tuple[list[str], dict]:
    """Titles for the language model: every title the data has, except the test split's.

    The train and validation parts of the split come first. Catalogue rows that are not in the
    split at all (other books of the full download, or books the cleaning dropped) are added
    unless they share a record id or a normalised title with a test book. Then up to
    ``pool_titles`` titles (a seeded sample) of the unlabelled collection
    (:func:`blgenre.data.unlabelled.unlabelled_pool`, which holds no validation or test book):
    ULMFiT's second stage, the language model learning the target domain. Returns the titles
    and a count per source.
    """
    from blgenre import data
    from blgenre.data import split

    books = split.load_split() if books is None else books
    test = books[books["split"] == "test"]
    blocked_ids = set(test["record_id"].astype(str))
    blocked_keys = set(test["title"].map(data.title_key))
    seen_ids = set(books["record_id"].astype(str))
    titles = books.loc[books["split"] != "test", "title"].tolist()
    sources = {p: int((books["split"] == p).sum()) for p in ("train", "valid")}
    seen_keys = {data.title_key(t) for t in titles}

    extra: list[str] = []
    try:
        raw, _ = data.load_raw()
        frames = [raw[["BL record ID", "Title"]].set_axis(["record_id", "title"], axis=1)]
    except Exception:  # noqa: BLE001 - extra titles are optional
        frames = []
    try:
        ann = data.load_annotations()
        frames.append(ann[["BL record ID", "title"]].set_axis(["record_id", "title"], axis=1))
    except Exception:  # noqa: BLE001 - the annotation export is optional
        pass
    for frame in frames:
        for rid, title in zip(frame["record_id"].astype(str).str.strip(), frame["title"],
                              strict=True):
            title = data.normalise_title(title)
            key = data.title_key(title)
            if (not title or rid in seen_ids or rid in blocked_ids or key in blocked_keys
                    or key in seen_keys):
                continue
            seen_keys.add(key)
            extra.append(title)
    sources["other catalogue titles"] = len(extra)
    titles += extra
    if pool_titles:
        from blgenre.data.unlabelled import unlabelled_pool

        pool = [t for t in unlabelled_pool()["title"] if data.title_key(t) not in seen_keys]
        rng = np.random.default_rng(seed)
        picks = np.sort(rng.choice(len(pool), size=min(pool_titles, len(pool)), replace=False))
        titles += [pool[i] for i in picks]
        sources["unlabelled collection"] = len(picks)
    if max_titles and len(titles) > max_titles:
        rng = np.random.default_rng(seed)
        keep = np.sort(rng.choice(len(titles), size=max_titles, replace=False))
        titles = [titles[i] for i in keep]
        sources["sampled to"] = max_titles
    return titles, sources


def _lm_dls(titles: list[str], cfg: FastaiConfig, path: Path):
    from fastai.text.all import ColReader, ColSplitter, DataBlock, TextBlock

    rng = np.random.default_rng(cfg.seed)
    df = pd.DataFrame({"text": clean_titles(titles)})
    df = df[df["text"] != ""].reset_index(drop=True)
    df["is_valid"] = rng.random(len(df)) < cfg.lm_valid_pct
    block = TextBlock.from_df("text", is_lm=True, seq_len=cfg.lm_seq_len, min_freq=cfg.min_freq,
                              n_workers=0)
    dblock = DataBlock(blocks=block, get_x=ColReader("text"), splitter=ColSplitter("is_valid"))
    return dblock.dataloaders(df, bs=cfg.lm_bs, seq_len=cfg.lm_seq_len, num_workers=0,
                              path=path, verbose=False)


def _clas_dls(train: pd.DataFrame, valid: pd.DataFrame, vocab: list[str], cfg: FastaiConfig,
              path: Path, labels: list[str] = LABELS):
    from fastai.text.all import CategoryBlock, ColReader, ColSplitter, DataBlock, TextBlock

    df = pd.concat([
        pd.DataFrame({"text": clean_titles(train["title"]), "label": train["label"].values,
                      "is_valid": False}),
        pd.DataFrame({"text": clean_titles(valid["title"]), "label": valid["label"].values,
                      "is_valid": True}),
    ], ignore_index=True)
    blocks = (TextBlock.from_df("text", vocab=vocab, seq_len=cfg.clas_seq_len, n_workers=0),
              CategoryBlock(vocab=list(labels)))
    dblock = DataBlock(blocks=blocks, get_x=ColReader("text"), get_y=ColReader("label"),
                       splitter=ColSplitter("is_valid"))
    return dblock.dataloaders(df, bs=cfg.clas_bs, num_workers=0, path=path, verbose=False)


# --------------------------------------------------------------------------------------------
# Training


def _lr_find(learn, iters: int, end_lr: float = 1.0) -> dict:
    """An ``lr_find`` curve (learning rates and smoothed losses) and fastai's suggestions."""
    import torch
    from fastai.callback.schedule import minimum, steep, valley

    if not iters:
        return {}
    # lr_find restores the weights afterwards; restoring the data loaders' shuffling state and
    # dropping the optimiser too makes the training that follows identical to one without it.
    # (The language model's loader shuffles its items in place, so their order is kept too.)
    states = [(dl.rng.getstate(), list(getattr(getattr(dl, "items", None), "idxs", None) or []))
              for dl in learn.dls.loaders]
    with learn.no_bar(), learn.no_logging():
        learn.lr_find(num_it=iters, end_lr=end_lr, show_plot=False, suggest_funcs=None)
    for dl, (state, idxs) in zip(learn.dls.loaders, states, strict=True):
        dl.rng.setstate(state)
        if idxs:
            dl.items.idxs[:] = idxs  # in place: the loader's lengths share this list
            dl.make_chunks()
    learn.opt = None  # the next fit starts with a fresh optimiser, as it would without lr_find
    rec = learn.recorder
    n = len(rec.losses)
    out = {"lr": [float(x) for x in rec.lrs[:n]], "loss": [float(x) for x in rec.losses]}
    lrs = torch.tensor(out["lr"][iters // 10:-5 or None])
    losses = torch.tensor(out["loss"][iters // 10:-5 or None])
    for func in (valley, minimum, steep):
        try:
            out[func.__name__] = float(func(lrs, losses, iters)[0])
        except (IndexError, RuntimeError, ValueError):  # too short a curve to judge
            out[func.__name__] = None
    return out


def _fit(learn, epochs: int, lr, history: History, model: str, stage: str) -> None:
    if epochs <= 0:
        return
    with learn.no_bar(), learn.no_logging():
        learn.fit_one_cycle(epochs, lr, moms=(0.8, 0.7, 0.8))
    history.record(learn, model, stage)


def wt103_url() -> str:
    """Where fastai downloads its WikiText-103 AWD-LSTM weights from."""
    from fastai.data.external import URLs

    return URLs.WT103_FWD


def wt103_status(timeout: float = 3.0) -> tuple[bool, str]:
    """Can the WikiText-103 weights be used? ``(True, how)`` or ``(False, why not)``.

    A cached copy in ``FASTAI_HOME`` counts; otherwise one HEAD request with a short timeout.
    Offline this answers within a second or two (a name-resolution error), so the book does not
    start a download that cannot finish.
    """
    import urllib.request

    from fastai.data.external import fastai_path

    url = wt103_url()
    cached = fastai_path("model") / Path(url).name.split(".")[0]
    if cached.is_dir() and any(cached.glob("*.pth")):
        # (no path: the reason is shared in model.json and cards, which name no machine's paths)
        return True, f"cached in FASTAI_HOME ({cached.name})"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"),
                                    timeout=timeout) as response:
            ok = response.status == 200
        return ok, f"{url} answered {response.status}"
    except Exception as exc:  # noqa: BLE001 - URLError, timeouts, HTTP errors: all mean 'no'
        # no time taken in the reason: it went into shared cards and made two builds differ
        return False, f"{url} not reachable within {timeout:g} s ({type(exc).__name__}: {exc})"


def _language_model_learner(dls, cfg: FastaiConfig):
    """The LM learner, the pretraining path used (``wikitext-103`` or ``titles-only``) and why."""
    from fastai.text.all import AWD_LSTM, Perplexity, accuracy, language_model_learner

    if cfg.pretrained not in ("auto", *PRETRAINED_PATHS):
        raise ValueError(f"pretrained={cfg.pretrained!r}; expected 'auto' or one of "
                         f"{PRETRAINED_PATHS}")
    kwargs = dict(metrics=[accuracy, Perplexity()], wd=cfg.wd, path=dls.path)
    reason = "FastaiConfig(pretrained='titles-only')"
    if cfg.pretrained != "titles-only":
        ok, reason = wt103_status()
        if ok:
            try:
                learn = language_model_learner(dls, AWD_LSTM, drop_mult=cfg.lm_drop_mult,
                                               pretrained=True, **kwargs)
                return learn, "wikitext-103", reason
            except Exception as exc:  # noqa: BLE001 - a failed or broken download
                reason = f"download of the WikiText-103 weights failed ({type(exc).__name__}: {exc})"
        if cfg.pretrained == "wikitext-103":
            raise ModelError(f"could not get fastai's WikiText-103 weights: {reason}")
    set_seed(cfg.seed)  # the same random start whichever way we got here
    learn = language_model_learner(dls, AWD_LSTM, config=cfg.lm_arch_config(False),
                                   drop_mult=cfg.lm_drop_mult, pretrained=False, **kwargs)
    return learn, "titles-only", reason


def tokenize(titles: list[str]) -> list[list[str]]:
    """fastai's tokens for ``titles`` (spaCy's rule-based English tokenizer plus fastai's rules)."""
    from fastai.text.all import TokenizeWithRules, WordTokenizer

    return [list(t) for t in TokenizeWithRules(WordTokenizer())(clean_titles(titles))]


def train_language_model(titles: list[str], cfg: FastaiConfig, workdir: Path,
                         history: History) -> tuple[object, dict]:
    """Train the AWD-LSTM language model; save its encoder as ``workdir/models/encoder.pth``."""
    start = time.perf_counter()
    set_seed(cfg.seed)
    dls = _lm_dls(titles, cfg, workdir)
    learn, path, reason = _language_model_learner(dls, cfg)
    pretrained = path == "wikitext-103"
    if cfg.lr_find_iters:
        if not pretrained:
            learn.unfreeze()
        history.lr_find["language model"] = _lr_find(learn, cfg.lr_find_iters, end_lr=10.0)
        history.lr_find["language model"]["chosen"] = cfg.lm_lr
    set_seed(cfg.seed)
    if pretrained:  # ULMFiT: first adapt the new embeddings and head, then everything
        learn.freeze()
        _fit(learn, 1, cfg.lm_lr * 10, history, "language model", "frozen")
        learn.unfreeze()
        _fit(learn, cfg.lm_epochs_pretrained - 1, cfg.lm_lr, history, "language model", "unfrozen")
    else:
        learn.unfreeze()
        _fit(learn, cfg.lm_epochs, cfg.lm_lr, history, "language model", "all layers")
    learn.save_encoder("encoder")
    seconds = time.perf_counter() - start
    history.seconds["language model"] = round(seconds, 1)
    info = {"pretraining": path, "pretraining_note": reason, "vocab_size": len(dls.vocab),
            "lm_titles": len(titles), "lm_train_batches": len(dls.train),
            "lm_arch": cfg.lm_arch_config(pretrained)}
    return learn, info


def train_classifier(train: pd.DataFrame, valid: pd.DataFrame, vocab: list[str],
                     cfg: FastaiConfig, pretrained: bool, workdir: Path, history: History):
    """Fine-tune the classifier on ``train`` with gradual unfreezing; score on ``valid``."""
    import torch
    from fastai.text.all import (
        AWD_LSTM,
        CrossEntropyLossFlat,
        F1Score,
        accuracy,
        text_classifier_learner,
    )

    from blgenre.models.lifecycle import label_set

    start = time.perf_counter()
    set_seed(cfg.seed)
    labels = label_set(train["label"])
    dls = _clas_dls(train, valid, vocab, cfg, workdir, labels)
    weight = None
    if cfg.class_weights:
        counts = train["label"].value_counts().reindex(labels, fill_value=0).to_numpy()
        weight = torch.tensor(len(train) / (len(labels) * np.maximum(counts, 1)),
                              dtype=torch.float32)
    learn = text_classifier_learner(
        dls, AWD_LSTM, seq_len=cfg.clas_seq_len, config=cfg.clas_arch_config(pretrained),
        drop_mult=cfg.clas_drop_mult, pretrained=False, wd=cfg.wd,
        loss_func=CrossEntropyLossFlat(weight=weight),
        metrics=[accuracy, F1Score(average="macro")], path=workdir)
    learn.load_encoder("encoder")
    learn.freeze_to(-1)
    if cfg.lr_find_iters:
        history.lr_find["classifier"] = _lr_find(learn, cfg.lr_find_iters, end_lr=1.0)
        history.lr_find["classifier"]["chosen"] = cfg.clas_lr
    set_seed(cfg.seed)
    lr, decay = cfg.clas_lr, 2.6 ** 4  # ULMFiT's discriminative factor 2.6 per layer group
    e1, e2, e3, e4 = cfg.clas_epochs_pretrained if pretrained else cfg.clas_epochs
    _fit(learn, e1, lr, history, "classifier", "freeze_to(-1)")
    learn.freeze_to(-2)
    _fit(learn, e2, slice(lr / 2 / decay, lr / 2), history, "classifier", "freeze_to(-2)")
    learn.freeze_to(-3)
    _fit(learn, e3, slice(lr / 4 / decay, lr / 4), history, "classifier", "freeze_to(-3)")
    learn.unfreeze()
    _fit(learn, e4, slice(lr / 10 / decay, lr / 10), history, "classifier", "unfreeze")
    history.seconds["classifier"] = round(time.perf_counter() - start, 1)
    return learn


def train_fastai(train: pd.DataFrame, valid: pd.DataFrame, lm_titles: list[str],
                 config: FastaiConfig | None = None, folder: str | Path | None = None,
                 data_sha256: str = "", extra_meta: dict | None = None):
    """Train the language model and the classifier; save them to ``folder`` if one is given.

    ``train`` and ``valid`` need ``title`` and ``label`` columns; ``lm_titles`` must not contain
    test titles. Returns the :class:`~blgenre.models.fastai_model.FastaiModel`, ready to predict,
    with ``meta`` and ``history``.
    """
    from blgenre import runinfo
    from blgenre.evaluation.evaluate import labels_from_proba, macro_f1
    from blgenre.models.fastai_model import FastaiModel
    from blgenre.models.lifecycle import label_set

    cfg = config or FastaiConfig()
    labels = label_set(train["label"])
    history = History()
    total = time.perf_counter()
    with _quiet(), _threads(cfg.threads), \
            tempfile.TemporaryDirectory(prefix="blgenre-fastai-") as tmp:
        workdir = Path(tmp)
        lm, lm_info = train_language_model(lm_titles, cfg, workdir, history)
        vocab = list(lm.dls.vocab)
        pretrained = lm_info["pretraining"] == "wikitext-103"
        del lm
        learn = train_classifier(train, valid, vocab, cfg, pretrained, workdir, history)
    model = FastaiModel(learn, {"kind": NAME, "labels": labels}, history)
    valid_prob = model.predict_proba(valid["title"].tolist())
    history.seconds["total"] = round(time.perf_counter() - total, 1)
    model.meta.update(
        architecture="AWD_LSTM (ULMFiT)",
        pretraining=lm_info["pretraining"],
        pretraining_note=lm_info["pretraining_note"],
        vocab_size=lm_info["vocab_size"],
        data_sha256=data_sha256,
        data_sha256_of="artifacts/split.csv (blgenre.data.split.split_info()['split_sha256'])",
        n_train=len(train), n_valid=len(valid), lm_titles=lm_info["lm_titles"],
        hyperparameters=cfg.as_dict(),
        lm_arch=lm_info["lm_arch"],
        valid_macro_f1=macro_f1(valid["label"], labels_from_proba(valid_prob, labels=labels),
                                labels),
        seconds=history.seconds,
        parameters=int(sum(p.numel() for p in learn.model.parameters())),
        hardware=runinfo.hardware(),
        **(extra_meta or {}),
    )
    # whether --fast may use the int8 variant (blgenre.models.fastai_fast)
    model.meta[fastai_fast.CHECK_KEY] = fastai_fast.int8_check(model, valid, valid_prob)
    if folder is not None:
        model.save(folder)
    return model


LM_KEYS = ("pretrained", "seed", "emb_sz", "n_hid", "n_layers", "min_freq", "max_lm_titles",
           "lm_pool_titles", "lm_valid_pct", "lm_bs", "lm_seq_len", "lm_epochs",
           "lm_epochs_pretrained", "lm_lr", "lm_drop_mult", "wd")


def compare_settings(variants: list[dict], train: pd.DataFrame, valid: pd.DataFrame,
                     lm_titles: list[str], base: FastaiConfig | None = None) -> pd.DataFrame:
    """Validation macro-F1 of each variant of ``base`` (a dict of changed settings).

    Variants that share the language-model settings share one language model. Only the
    validation split is used; this is how the defaults of :class:`FastaiConfig` were chosen.
    """
    from blgenre.evaluation.evaluate import labels_from_proba, macro_f1
    from blgenre.models.fastai_model import FastaiModel

    base = base or FastaiConfig()
    rows, encoders = [], {}
    with _quiet(), _threads(base.threads), \
            tempfile.TemporaryDirectory(prefix="blgenre-fastai-") as tmp:
        for variant in variants:
            cfg = replace(base, lr_find_iters=0, **variant)
            lm_key = tuple(getattr(cfg, k) for k in LM_KEYS)
            workdir = Path(tmp) / str(len(encoders) if lm_key not in encoders
                                       else encoders[lm_key][0])
            history = History()
            start = time.perf_counter()
            if lm_key not in encoders:
                lm, info = train_language_model(lm_titles, cfg, workdir, history)
                encoders[lm_key] = (workdir.name, list(lm.dls.vocab), info["pretraining"])
            _, vocab, path = encoders[lm_key]
            learn = train_classifier(train, valid, vocab, cfg, path == "wikitext-103", workdir,
                                     history)
            prob = FastaiModel(learn).predict_proba(valid["title"].tolist())[:, 0]
            rows.append({**variant, "pretraining": path,
                         "valid_macro_f1": macro_f1(valid["label"], labels_from_proba(prob)),
                         "seconds": round(time.perf_counter() - start, 1)})
    return pd.DataFrame(rows)
