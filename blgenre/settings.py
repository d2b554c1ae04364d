"""Run-wide settings read from the environment.

``BLGENRE_WORKSHOP=1`` turns on *workshop mode*: shorter training, so that any chapter finishes
in minutes on a 2-core laptop or a free Colab runtime. The fastai model gets fewer epochs (its
language model most of all); the transformer gets one learning rate, fewer epochs and a sample
of the training titles. Workshop numbers differ from the published book's, and every training
chapter says so.
"""

from __future__ import annotations

import os

from blgenre.seed import SEED

WORKSHOP_ENV = "BLGENRE_WORKSHOP"
#: Training titles the transformer sees in workshop mode (the full training part has about
#: 1,200). With 400 it learned nothing in two epochs; 600 for three reached a validation
#: macro-F1 of about 0.85 in 40 s on a 2-core CPU.
WORKSHOP_TRAIN_TITLES = 600
NOTICE = ("WORKSHOP RUN (BLGENRE_WORKSHOP=1): shortened training (fewer epochs; the transformer "
          "sees a sample of the titles); "
          "the numbers below differ from the published book's.")


def truthy(value: str | None) -> bool:
    """Whether an environment variable's value means yes (``1``, ``true``, ``yes``, ``on``)."""
    return str(value or "").strip().lower() in {"1", "true", "yes", "on"}


def workshop() -> bool:
    """Whether workshop mode is on."""
    return truthy(os.environ.get(WORKSHOP_ENV))


def announce() -> str:
    """Print and return the workshop notice when workshop mode is on ('' otherwise)."""
    if workshop():
        print(NOTICE)
        return NOTICE
    return ""


def sample_train(train, n: int = WORKSHOP_TRAIN_TITLES, seed: int = SEED):
    """In workshop mode, a stratified sample of ``n`` training books; otherwise ``train``."""
    if not workshop() or len(train) <= n:
        return train
    frac = n / len(train)
    return (train.groupby("label", group_keys=False)
            .sample(frac=frac, random_state=seed).sort_index().reset_index(drop=True))
