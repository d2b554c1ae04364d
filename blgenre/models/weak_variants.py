"""Model variants that learn from the collection: gold labels plus weak labels (Part II).

Serves the model chapters' *gold-only vs gold + weak* comparison and the chapter *Weak
supervision*. Each variant subclasses its gold-only kind and only changes ``train_on_split``:

- ``baseline_weak``: the baseline's hyper-parameters (chosen on validation in its chapter),
  fitted on the gold training titles plus weak-labelled pool titles; thresholded or weighted by
  the label model's confidence, whichever scores better on validation;
- ``fastai_weak``: ULMFiT's second stage on the target domain: the language model is fine-tuned on
  the training titles *plus every pool title*, for as many updates as the gold-only model gets;
  the classifier then trains on gold plus a sample of confident weak labels;
- ``transformer_weak``: the gold-only model's learning rate and epochs, one run, on gold plus a
  sample of confident weak labels (no search, to keep the build short);
- ``baseline_distilled``: the baseline on gold plus the *transformer's* labels for the pool
  (distillation, :mod:`blgenre.weak.teacher`), thresholded or weighted as chosen on validation;
- ``fastai_distilled``: the fastai model's classifier on gold plus a sample of them;
- ``transformer_distilled``: the transformer on gold plus a sample of its own confident labels
  for the pool (self-training), as many as ``transformer_weak`` adds.

The book builds train ``baseline_weak`` and ``baseline_distilled``; the neural variants take too
long for a build and are measured by ``python -m blgenre.evaluation.gold_vs_weak``.

The weak labels come from :func:`blgenre.weak.labels.weak_labels` (cached); no validation or test
book is in the pool (:func:`blgenre.data.unlabelled.unlabelled_pool`).
"""

from __future__ import annotations

import time

import pandas as pd

from blgenre.models.baseline import BaselineModel, prob_fiction
from blgenre.models.fastai_model import FastaiModel
from blgenre.models.transformer_model import TransformerModel

#: Options tried for the baseline (threshold on the label model's confidence, weight of a weak
#: label relative to a gold one). Also measured once on validation and dropped to save build time:
#: weighting each weak label by its confidence (the same score as weight 1.0) and threshold 0.9
#: with weight 1.0 (0.80 against 0.84).
BASELINE_OPTIONS = ((0.5, 1.0), (0.5, 0.3), (0.9, 0.3))
#: The same for the transformer's labels (distillation). Thresholds 0.8 and 0.95 (each with
#: weight 1.0 and 0.3) were also measured once on validation, with the transformer's int8 copy
#: as the teacher: none scored above threshold 0.5 with weight 1.0.
DISTIL_OPTIONS = ((0.5, 1.0), (0.5, 0.3), (0.9, 1.0))
#: Weak titles added for the neural models, as a multiple of the gold training titles.
WEAK_PER_GOLD = 1.0
#: Confidence a weak label needs to be used by the neural models.
NEURAL_THRESHOLD = 0.9
#: Transformer-labelled titles the distilled fastai model adds, as a multiple of the gold ones
#: (2 was the one setting tried: each multiple adds about a minute and a half of training on
#: two cores).
DISTIL_PER_GOLD = 2.0
SEED = 0


def weak_frame(threshold: float, n: int | None = None, seed: int = SEED) -> pd.DataFrame:
    """Pool titles whose weak label is at least ``threshold`` confident (``title``, ``label``,
    ``weight``), optionally a sample of ``n`` keeping the weak labels' class shares."""
    from blgenre.weak.labels import weak_labels

    pool, _ = weak_labels()
    keep = pool[(pool["weak_label"] != "") & (pool["confidence"] >= threshold)]
    frame = pd.DataFrame({"title": keep["title"], "label": keep["weak_label"],
                          "weight": keep["confidence"], "id": keep["id"]})
    return sample_rows(frame, n, seed)


def sample_rows(frame: pd.DataFrame, n: int | None, seed: int = SEED) -> pd.DataFrame:
    """About ``n`` rows of ``frame``, keeping its labels' shares (all of them if ``n`` is None)."""
    if n is not None and len(frame) > n:
        frame = frame.groupby("label", group_keys=False).sample(
            frac=n / len(frame), random_state=seed)
    return frame.reset_index(drop=True)


def with_weak(train: pd.DataFrame, weak: pd.DataFrame, weak_weight=1.0) -> pd.DataFrame:
    """Gold ``train`` (weight 1) followed by ``weak`` titles (weight ``weak_weight``)."""
    gold = train[["title", "label"]].assign(weight=1.0, source="gold")
    w = weak["weight"] if weak_weight == "confidence" else float(weak_weight)
    return pd.concat([gold, weak[["title", "label"]].assign(weight=w, source="weak")],
                     ignore_index=True)


def _gold_meta(name: str) -> dict:
    from blgenre.models.lifecycle import ensure

    return dict(ensure(name).model.meta)


class BaselineWeakModel(BaselineModel):
    """The baseline, trained on gold plus weak labels."""

    kind = "baseline_weak"
    #: (threshold on the extra labels' confidence, weight of an extra title), tried on validation
    options = BASELINE_OPTIONS

    @staticmethod
    def extra_rows(threshold: float) -> pd.DataFrame:
        """The labelled pool titles this variant adds to the gold ones (``title``, ``label``)."""
        return weak_frame(threshold)

    @classmethod
    def run_settings(cls) -> dict:
        from blgenre.weak.labels import VERSION

        return {**super().run_settings(), "options": cls.options, "weak_version": VERSION}

    @classmethod
    def train_on_split(cls, train: pd.DataFrame, valid: pd.DataFrame) -> BaselineWeakModel:
        from blgenre.evaluation.evaluate import labels_from_proba, macro_f1
        from blgenre.weak.noise import fit_baseline

        start = time.perf_counter()
        params = _gold_meta("baseline")["hyperparameters"]
        rows, best = [], None
        for threshold, weight in cls.options:
            data = with_weak(train, cls.extra_rows(threshold), weight)
            pipe = fit_baseline(data, params, sample_weight=data["weight"])
            f1 = macro_f1(valid["label"], labels_from_proba(prob_fiction(pipe, valid["title"].tolist())))
            rows.append({"threshold": threshold, "weak_weight": str(weight),
                         "weak_titles": int((data["source"] == "weak").sum()), "valid_macro_f1": f1})
            if best is None or f1 > best[0]:
                best = (f1, pipe, rows[-1])
        f1, pipe, chosen = best
        return cls(pipe, {"kind": cls.kind, "hyperparameters": params, "weak": chosen,
                          "valid_macro_f1": f1, "n_train": len(train), "grid": rows,
                          "train_seconds": round(time.perf_counter() - start, 2)})


class BaselineDistilledModel(BaselineWeakModel):
    """The baseline, trained on gold labels plus the transformer's labels for the pool.

    Distillation: the slow, accurate model labels the collection once; the fast one learns
    from those labels (:mod:`blgenre.weak.teacher`). Threshold and weight are chosen on
    validation, as for the weak labels.
    """

    kind = "baseline_distilled"
    options = DISTIL_OPTIONS

    @staticmethod
    def extra_rows(threshold: float) -> pd.DataFrame:
        from blgenre.weak.teacher import distilled_frame

        return distilled_frame(threshold)

    @classmethod
    def run_settings(cls) -> dict:
        from blgenre.weak import teacher

        # the teacher's files: a retrained transformer gives other labels, so a new student
        return {**BaselineModel.run_settings(), "options": cls.options,
                "teacher": teacher.teacher_key()}


class _NeuralWeak:
    """What the neural variants add to their kind's reuse settings."""

    @classmethod
    def run_settings(cls) -> dict:
        from blgenre.weak.labels import VERSION

        return {**super().run_settings(), "weak_per_gold": WEAK_PER_GOLD,  # type: ignore[misc]
                "threshold": NEURAL_THRESHOLD, "weak_version": VERSION}


class TransformerWeakModel(_NeuralWeak, TransformerModel):
    """The transformer, fine-tuned once on gold plus confident weak labels."""

    kind = "transformer_weak"

    @staticmethod
    def extra_rows(n: int) -> pd.DataFrame:
        """About ``n`` labelled pool titles added to the gold ones (``title``, ``label``)."""
        return weak_frame(NEURAL_THRESHOLD, n=n)

    @classmethod
    def train_on_split(cls, train: pd.DataFrame, valid: pd.DataFrame) -> TransformerWeakModel:
        """The gold model's learning rate and epochs, one run, on gold plus :meth:`extra_rows`
        (no search, to keep the run short)."""
        from blgenre import settings
        from blgenre.models.transformer_training import fine_tune, resolve_checkpoint

        gold = _gold_meta("transformer")
        # the gold model's checkpoint, resolved the same way (its saved name alone cannot be
        # loaded offline: the offline copy is a local folder)
        checkpoint = resolve_checkpoint()
        if checkpoint.name != gold.get("checkpoint"):
            raise ValueError(f"the transformer was fine-tuned from {gold.get('checkpoint')}, "
                             f"but this run would start from {checkpoint.name}")
        train = settings.sample_train(train)
        weak = cls.extra_rows(int(WEAK_PER_GOLD * len(train)))
        data = with_weak(train, weak).sample(frac=1.0, random_state=SEED)
        hp = gold["hyperparameters"]
        run = fine_tune(data["title"].tolist(), data["label"].tolist(), valid["title"].tolist(),
                        valid["label"].tolist(), checkpoint,
                        learning_rate=hp["learning_rate"], epochs=int(hp["max_epochs"]),
                        run_name=cls.kind.removeprefix("transformer_"))
        meta = {"kind": cls.kind, "checkpoint": checkpoint.name,
                "hyperparameters": {**hp, "epochs": run.best_epoch},
                "valid_macro_f1": run.valid_macro_f1, "train_seconds": run.train_seconds,
                "n_train": len(train), "n_weak": len(weak), "workshop": settings.workshop()}
        return cls(run.model, run.tokenizer, meta)


class TransformerDistilledModel(TransformerWeakModel):
    """The transformer, fine-tuned on gold plus its *own* confident labels for the pool.

    Self-training (self-distillation): the gold-only transformer is the teacher
    (:mod:`blgenre.weak.teacher`), so the pool's labels come from the most accurate model in
    the book rather than from rules and the baseline; what a fresh fine-tuning can gain is the
    wider collection's vocabulary, seen with labels. The same amount and confidence of extra
    titles as ``transformer_weak``, so that the two differ only in who labelled them.
    """

    kind = "transformer_distilled"

    @staticmethod
    def extra_rows(n: int) -> pd.DataFrame:
        from blgenre.weak.teacher import distilled_frame

        return sample_rows(distilled_frame(NEURAL_THRESHOLD), n)

    @classmethod
    def run_settings(cls) -> dict:
        from blgenre.weak import teacher

        return {**TransformerModel.run_settings(), "weak_per_gold": WEAK_PER_GOLD,
                "threshold": NEURAL_THRESHOLD, "teacher": teacher.teacher_key()}


class FastaiWeakModel(_NeuralWeak, FastaiModel):
    """ULMFiT with the language model fine-tuned on the collection, classifier on gold + weak."""

    kind = "fastai_weak"

    @classmethod
    def train_on_split(cls, train: pd.DataFrame, valid: pd.DataFrame) -> FastaiWeakModel:
        from dataclasses import replace

        from blgenre import settings
        from blgenre.data import split
        from blgenre.models.fastai_model import default_config, lm_corpus, train_fastai

        cfg = default_config()
        titles, sources = lm_corpus(max_titles=None, seed=cfg.seed)
        corpus = lm_corpus_with_pool(titles)
        # as many language-model updates as the gold-only model makes, over a wider corpus
        epochs = max(1, round(cfg.lm_epochs * min(len(titles), cfg.max_lm_titles) / len(corpus)))
        cfg = replace(cfg, max_lm_titles=len(corpus), lm_epochs=epochs)
        weak = weak_frame(NEURAL_THRESHOLD, n=int(WEAK_PER_GOLD * len(train)))
        data = with_weak(train, weak)
        model = train_fastai(data, valid, corpus, cfg,
                             data_sha256=split.split_info()["split_sha256"],
                             extra_meta={"lm_sources": {**sources, "unlabelled pool": len(corpus)
                                                        - len(titles)},
                                         "n_weak": len(weak), "workshop": settings.workshop()})
        return cls(model.learn, {**model.meta, "kind": cls.kind}, model.history)


class FastaiDistilledModel(FastaiModel):
    """ULMFiT as in its chapter, with the classifier trained on gold plus the transformer's labels.

    Distillation for the fastai model (:mod:`blgenre.weak.teacher`): a stratified sample of
    ``DISTIL_PER_GOLD`` times the gold training titles, from every pool title the transformer
    labelled. The language model is the gold-only model's recipe.
    """

    kind = "fastai_distilled"

    @classmethod
    def run_settings(cls) -> dict:
        from blgenre.weak import teacher

        return {**super().run_settings(), "distil_per_gold": DISTIL_PER_GOLD,
                "teacher": teacher.teacher_key()}

    @classmethod
    def train_on_split(cls, train: pd.DataFrame, valid: pd.DataFrame) -> FastaiDistilledModel:
        from blgenre import settings
        from blgenre.data import split
        from blgenre.models.fastai_model import default_config, lm_corpus, train_fastai
        from blgenre.weak.teacher import distilled_frame

        cfg = default_config()
        titles, sources = lm_corpus(max_titles=cfg.max_lm_titles, seed=cfg.seed,
                                    pool_titles=cfg.lm_pool_titles)
        taught = sample_rows(distilled_frame(0.5), int(DISTIL_PER_GOLD * len(train)))
        data = with_weak(train, taught).sample(frac=1.0, random_state=SEED)
        model = train_fastai(data, valid, titles, cfg,
                             data_sha256=split.split_info()["split_sha256"],
                             extra_meta={"lm_sources": sources, "n_taught": len(taught),
                                         "workshop": settings.workshop()})
        return cls(model.learn, {**model.meta, "kind": cls.kind}, model.history)


def lm_corpus_with_pool(titles: list[str]) -> list[str]:
    """``titles`` (the gold-only language model's corpus) plus every pool title."""
    from blgenre.weak.labels import weak_labels

    pool, _ = weak_labels()
    seen = set(titles)
    return list(titles) + [t for t in pool["title"] if t not in seen]
