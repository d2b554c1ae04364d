"""Part II of the book: the models, one registry of kinds and one lifecycle for all of them.

:mod:`~blgenre.models.registry` (the kinds), :mod:`~blgenre.models.lifecycle` (model folders,
``model.json``, loading and the reuse rule; its public names are re-exported here),
:mod:`~blgenre.models.baseline`, :mod:`~blgenre.models.fastai_model`,
:mod:`~blgenre.models.transformer_model` and :mod:`~blgenre.models.predict`.
"""

from blgenre.models.lifecycle import (  # noqa: F401
    META_FILE,
    Classifier,
    Ensured,
    checked_meta,
    ensure,
    ensure_models,
    load_model,
    missing_model_message,
    read_meta,
    reuse_verdict,
    run_stamp,
    train_and_save,
    verify_files,
    write_meta,
)
from blgenre.models.registry import KINDS, Kind, names, register  # noqa: F401
