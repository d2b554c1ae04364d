"""The one list of model kinds (Part II); every other module iterates over it.

A :class:`Kind` records what the rest of the book needs to know about a kind of model: where its
class lives, which chapter trains it, how the Hub and a Space should treat it and how a reader
loads it without this package. The cards, the app, the Hub folders, the Space and the
comparisons read these records instead of naming kinds themselves, so adding a model kind means
writing its module and one :func:`register` call here, nothing else.

Each kind's class offers the same verbs (see :class:`blgenre.models.lifecycle.Classifier`):
``train_on_split(train, valid)`` returning a model, ``save(folder, **info)``, ``load(folder)``
and ``predict_proba(titles)``; :func:`blgenre.models.lifecycle.ensure` decides for all of them
whether a saved model can be reused.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from blgenre.errors import ModelError


@dataclass(frozen=True)
class Kind:
    """What the book knows about one kind of model."""

    name: str  #: short name: folder ``artifacts/models/<name>``, ``model.json`` ``kind``
    module: str  #: module holding the class
    class_name: str  #: class with ``train_on_split``, ``save``, ``load``, ``predict_proba``
    chapter: str  #: label of the chapter that trains it (``{ref}`` target)
    chapter_title: str  #: that chapter's title, for messages
    description: str  #: one line for cards and tables
    library_name: str  #: the Hub's ``library_name`` tag
    main_file: str  #: the file that holds the weights (pickles must be hash-checked first)
    pickled: bool  #: whether loading the main file unpickles (runs) code
    space_requirements: tuple[str, ...]  #: what a Space needs beside the ``blgenre`` package
    usage: str  #: Python that loads ``folder`` (a ``pathlib.Path``) and prints ``titles``' labels
    #: ``"module:function"`` returning extra files ``{name: text}`` for the kind's Hub folder,
    #: given its ``model.json`` (fastai's Hub integration expects a ``pyproject.toml``)
    hub_files: str = ""
    #: how :mod:`blgenre.models.onnx_export` exports it: ``torch``, ``skl2onnx``, or "" (not)
    onnx: str = ""
    #: for a variant (same files, other training data), the gold-only kind it varies
    variant_of: str = ""
    #: processes ``predict`` runs on a machine with as many cores: 2 for a kind whose one
    #: process keeps only one core busy (:mod:`blgenre.models.predict_streams`)
    predict_streams: int = 1

    def model_class(self):
        """The kind's class (imported on first use: torch is not loaded for the baseline)."""
        return getattr(importlib.import_module(self.module), self.class_name)

    def extra_hub_files(self, meta: dict) -> dict[str, str]:
        """Files beside the model that the Hub's integration for this library expects."""
        if not self.hub_files:
            return {}
        module, function = self.hub_files.split(":")
        return getattr(importlib.import_module(module), function)(meta)

    def missing_message(self, folder) -> str:
        """What to tell a reader whose model folder does not exist yet."""
        return (f"no {self.name} model in {folder}: build the book or run the chapter "
                f"'{self.chapter_title}' first")


KINDS: dict[str, Kind] = {}


def register(kind: Kind) -> Kind:
    """Add ``kind`` to the registry (in the order the chapters train the models)."""
    KINDS[kind.name] = kind
    return kind


def get(name: str) -> Kind:
    """The registered kind ``name``, or a clear error naming the known ones."""
    try:
        return KINDS[name]
    except KeyError:
        raise ModelError(f"unknown model kind {name!r}; expected one of {sorted(KINDS)}") from None


def names(variants: bool = False) -> tuple[str, ...]:
    """Every registered kind, in training order; the variants only if ``variants``.

    The chapters that need "the models" get the gold-only kinds, which the book shares (the
    validation split picked them over their variants, see the chapter 'Weak supervision'); the
    variants are trained where the book compares them.
    """
    return tuple(n for n, k in KINDS.items() if variants or not k.variant_of)


register(Kind(
    name="baseline",
    module="blgenre.models.baseline",
    class_name="BaselineModel",
    chapter="baseline",
    chapter_title="A baseline",
    description="TF-IDF word and character n-grams with logistic regression (scikit-learn)",
    library_name="sklearn",
    main_file="model.skops",
    pickled=False,
    onnx="skl2onnx",
    space_requirements=("scikit-learn", "skops", "numpy", "pandas"),
    usage=("import skops.io as sio  # scikit-learn pipeline saved without pickle\n"
           "path = folder / \"model.skops\"\n"
           "unknown = sio.get_untrusted_types(file=path)  # look at these before trusting them\n"
           "pipe = sio.load(path, trusted=unknown)\n"
           "for title, label, p in zip(titles, pipe.predict(titles),\n"
           "                           pipe.predict_proba(titles).max(axis=1)):\n"
           "    print(f\"{label:12} {p:.2f}  {title}\")\n"),
))
register(Kind(
    name="fastai",
    module="blgenre.models.fastai_model",
    class_name="FastaiModel",
    chapter="fastai",
    chapter_title="Training a fastai ULMFiT model",
    description="ULMFiT: an AWD-LSTM language model fine-tuned into a classifier (fastai)",
    library_name="fastai",
    main_file="model.pkl",
    pickled=True,
    space_requirements=("torch", "fastai"),
    predict_streams=2,  # tokenising in Python holds the interpreter lock: one core per process
    hub_files="blgenre.sharing.hub:fastai_hub_files",
    usage=("from fastai.learner import load_learner  # or huggingface_hub.from_pretrained_fastai\n"
           "learn = load_learner(folder / \"model.pkl\", cpu=True)\n"
           "for title in titles:\n"
           "    label, _, probs = learn.predict(title)\n"
           "    print(f\"{label:12} {float(probs.max()):.2f}  {title}\")\n"),
))
register(Kind(
    name="transformer",
    module="blgenre.models.transformer_model",
    class_name="TransformerModel",
    chapter="transformer",
    chapter_title="Fine-tuning a transformer",
    description=("a pretrained transformer fine-tuned for sequence classification "
                 "(Hugging Face transformers)"),
    library_name="transformers",
    main_file="model.safetensors",
    pickled=False,
    onnx="torch",
    space_requirements=("torch", "transformers", "safetensors"),
    usage=("from transformers import pipeline  # weights are safetensors: no pickle\n"
           "classify = pipeline(\"text-classification\", model=str(folder.resolve()))\n"
           "for title, result in zip(titles, classify(titles)):\n"
           "    print(f\"{result['label']:12} {result['score']:.2f}  {title}\")\n"),
))


# Variants that learn from the unlabelled collection: the same files and loaders as their
# gold-only kinds, so the usage is theirs. The weak-label ones are trained by the chapter 'Weak
# supervision'; the distilled baseline, which learns from the transformer, by the transformer's.
def _variant(gold: str, suffix: str, class_name: str, how: str,
             chapter: tuple[str, str] = ("weak-supervision", "Weak supervision")) -> Kind:
    base = KINDS[gold]
    return register(Kind(
        name=f"{gold}_{suffix}", module="blgenre.models.weak_variants", class_name=class_name,
        chapter=chapter[0], chapter_title=chapter[1], description=f"{base.description}, {how}",
        library_name=base.library_name, main_file=base.main_file, pickled=base.pickled,
        space_requirements=base.space_requirements, usage=base.usage, variant_of=gold,
        predict_streams=base.predict_streams))


_variant("baseline", "weak", "BaselineWeakModel",
         "trained on gold plus weak labels (thresholded or weighted, chosen on validation)")
_variant("fastai", "weak", "FastaiWeakModel", "trained on gold plus weak labels (language model "
         "fine-tuned on the unlabelled collection as well)")
_variant("transformer", "weak", "TransformerWeakModel",
         "trained on gold plus weak labels (confident weak labels)")
_variant("baseline", "distilled", "BaselineDistilledModel",
         "trained on gold labels plus the transformer's labels for the unlabelled collection "
         "(distillation)", chapter=("transformer", KINDS["transformer"].chapter_title))
_variant("fastai", "distilled", "FastaiDistilledModel",
         "its classifier trained on gold labels plus the transformer's labels for a sample of the "
         "unlabelled collection (distillation)",
         chapter=("transformer", KINDS["transformer"].chapter_title))
_variant("transformer", "distilled", "TransformerDistilledModel",
         "trained on gold labels plus its own confident labels for a sample of the unlabelled "
         "collection (self-training)", chapter=("transformer", KINDS["transformer"].chapter_title))


def weak_variant_of(name: str) -> str | None:
    """The weak-label variant of gold-only kind ``name``, if one is registered."""
    return f"{name}_weak" if f"{name}_weak" in KINDS else None


def variants_of(name: str) -> tuple[str, ...]:
    """Every registered variant of gold-only kind ``name`` (weak-label, distilled...)."""
    return tuple(n for n, k in KINDS.items() if k.variant_of == name)
