"""The yardstick: TF-IDF word and character n-grams with logistic regression.

Hyper-parameters are chosen on the validation split only; the chosen model is refitted on the
training split and saved to ``artifacts/models/baseline`` with the sha256 of its pickle.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline

from .data import LABELS
from .evaluate import labels_from_proba, macro_f1
from .models import verify_files, write_meta
from .paths import model_dir
from .text import clean_titles

MODEL_FILE = "model.joblib"
#: The grid searched on the validation split.
GRID = {
    "C": [0.3, 1.0, 3.0, 10.0, 30.0],
    "class_weight": [None, "balanced"],
    "features": ["word", "char", "word+char"],
}


def build_pipeline(C: float = 10.0, class_weight: str | None = "balanced",
                   features: str = "word+char", seed: int = 0) -> Pipeline:
    """TF-IDF features (word 1-2-grams and/or character 2-5-grams) + logistic regression."""
    parts = []
    if "word" in features:
        parts.append(("word", TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True)))
    if "char" in features:
        parts.append(("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2,
                                               sublinear_tf=True)))
    clf = LogisticRegression(C=C, class_weight=class_weight, max_iter=2000, random_state=seed)
    return Pipeline([("features", FeatureUnion(parts)), ("clf", clf)])


def prob_fiction(pipe: Pipeline, titles: list[str]) -> np.ndarray:
    """Probability of Fiction for each title."""
    col = list(pipe.classes_).index(LABELS[0])
    return pipe.predict_proba(clean_titles(titles))[:, col]


def tune(train: pd.DataFrame, valid: pd.DataFrame, grid: dict = GRID) -> pd.DataFrame:
    """Fit every grid point on ``train`` and score it on ``valid``; best (macro-F1) first."""
    rows = []
    for C, cw, feats in itertools.product(grid["C"], grid["class_weight"], grid["features"]):
        pipe = build_pipeline(C, cw, feats).fit(clean_titles(train["title"]), train["label"])
        pred = labels_from_proba(prob_fiction(pipe, valid["title"].tolist()))
        rows.append({"C": C, "class_weight": cw or "none", "features": feats,
                     "valid_macro_f1": macro_f1(valid["label"], pred)})
    return pd.DataFrame(rows).sort_values("valid_macro_f1", ascending=False, kind="stable")


class BaselineModel:
    """A fitted pipeline plus its metadata; the interface shared with the neural models."""

    def __init__(self, pipe: Pipeline, meta: dict | None = None):
        self.pipe = pipe
        self.meta = meta or {"kind": "baseline"}

    def predict_proba(self, titles: list[str]) -> np.ndarray:
        p = prob_fiction(self.pipe, list(titles))
        return np.column_stack([p, 1 - p])

    def save(self, folder: str | Path | None = None, **info) -> Path:
        folder = Path(folder) if folder else model_dir("baseline")
        folder.mkdir(parents=True, exist_ok=True)
        joblib.dump(self.pipe, folder / MODEL_FILE)
        self.meta = write_meta(folder, "baseline", [MODEL_FILE], **info)
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> BaselineModel:
        from .models import read_meta

        meta = read_meta(folder)
        verify_files(folder, meta)  # the pickle is only opened after its hash matched
        return cls(joblib.load(Path(folder) / MODEL_FILE), meta)


def train_baseline(train: pd.DataFrame, valid: pd.DataFrame) -> tuple[BaselineModel, pd.DataFrame]:
    """Tune on validation, refit the best setting on train, and return it with the grid results."""
    start = time.perf_counter()
    results = tune(train, valid)
    best = results.iloc[0]
    cw = None if best["class_weight"] == "none" else best["class_weight"]
    pipe = build_pipeline(best["C"], cw, best["features"]).fit(
        clean_titles(train["title"]), train["label"])
    model = BaselineModel(pipe, {"kind": "baseline"})
    model.meta.update(
        hyperparameters={"C": float(best["C"]), "class_weight": cw, "features": best["features"]},
        valid_macro_f1=float(best["valid_macro_f1"]),
        train_seconds=round(time.perf_counter() - start, 2),
        n_train=len(train),
    )
    return model, results


def ensure_baseline() -> tuple[BaselineModel, dict]:
    """The saved baseline and its test metrics, training and evaluating it first if needed.

    Later chapters call this so that each one runs on its own, even if the baseline chapter did
    not run in this build.
    """
    from . import split
    from .evaluate import evaluate, load_metrics
    from .models import load_model

    folder = model_dir("baseline")
    metrics = load_metrics("baseline")
    if (folder / "model.json").is_file() and metrics is not None:
        return load_model(folder), metrics
    train, valid, test = split.part("train"), split.part("valid"), split.part("test")
    model, _ = train_baseline(train, valid)
    model.save(folder, **{k: v for k, v in model.meta.items() if k != "kind"})
    metrics = evaluate("baseline", test, model.predict_proba(test["title"].tolist())[:, 0],
                       extra={"train_seconds": model.meta["train_seconds"]})
    return model, metrics


def top_features(model: BaselineModel, n: int = 15) -> pd.DataFrame:
    """The ``n`` features with the largest weights towards each class."""
    pipe = model.pipe
    names = pipe.named_steps["features"].get_feature_names_out()
    coef = pipe.named_steps["clf"].coef_[0]
    # scikit-learn's coefficient points towards classes_[1]
    sign = 1 if pipe.classes_[1] == LABELS[0] else -1
    order = np.argsort(sign * coef)
    clean = [name.split("__", 1)[-1] for name in names]
    return pd.DataFrame({
        "towards Fiction": [clean[i] for i in order[::-1][:n]],
        "weight (F)": np.round(sign * coef[order[::-1][:n]], 2),
        "towards Non-fiction": [clean[i] for i in order[:n]],
        "weight (NF)": np.round(sign * coef[order[:n]], 2),
    })
