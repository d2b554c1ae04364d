"""The yardstick: TF-IDF word and character n-grams with logistic regression.

Serves the chapter 'A baseline'. Hyper-parameters are chosen on the validation split only; the
chosen model is refitted on the training split and saved to ``artifacts/models/baseline`` as a
skops file (no pickle) with its sha256.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import numpy as np
import pandas as pd
import skops.io as sio
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline

from blgenre.data import LABELS
from blgenre.data.text import clean_titles
from blgenre.errors import ModelError
from blgenre.evaluation.evaluate import labels_from_proba, macro_f1
from blgenre.models.lifecycle import checked_meta, label_set, model_labels, training_info, write_meta
from blgenre.models.stable_files import canonical_skops, forget_object_ids
from blgenre.paths import model_dir

MODEL_FILE = "model.skops"
#: Types a saved baseline may contain (skops refuses anything else unless trusted).
TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.sparse.", "builtins.", "collections.")
#: The grid searched on the validation split.
GRID = {
    "C": [0.3, 1.0, 3.0, 10.0, 30.0],
    "class_weight": [None, "balanced"],
    "features": ["word", "char", "word+char"],
}


def build_pipeline(C: float = 10.0, class_weight: str | None = "balanced",
                   features: str = "word+char", seed: int = 0) -> Pipeline:
    """TF-IDF features (word 1-2-grams and/or character 2-5-grams) + logistic regression."""
    return Pipeline([("features", build_features(features)),
                     ("clf", build_classifier(C, class_weight, seed))])


def build_features(features: str = "word+char") -> FeatureUnion:
    """The TF-IDF part of :func:`build_pipeline`: ``word``, ``char`` or ``word+char``."""
    parts = []
    if "word" in features:
        parts.append(("word", TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True)))
    if "char" in features:
        parts.append(("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2,
                                               sublinear_tf=True)))
    return FeatureUnion(parts)


def build_classifier(C: float = 10.0, class_weight: str | None = "balanced",
                     seed: int = 0) -> LogisticRegression:
    """The logistic regression of :func:`build_pipeline`."""
    return LogisticRegression(C=C, class_weight=class_weight, max_iter=2000, random_state=seed)


def prob_fiction(pipe: Pipeline, titles: list[str]) -> np.ndarray:
    """Probability of Fiction for each title."""
    col = list(pipe.classes_).index(LABELS[0])
    return pipe.predict_proba(clean_titles(titles))[:, col]


def proba(pipe: Pipeline, titles: list[str], labels: list[str]) -> np.ndarray:
    """Probabilities of each of ``labels`` (columns in that order) for each title."""
    cols = [list(pipe.classes_).index(label) for label in labels]
    return pipe.predict_proba(clean_titles(titles))[:, cols]


def tune(train: pd.DataFrame, valid: pd.DataFrame, grid: dict | None = None) -> pd.DataFrame:
    """Fit every grid point (default :data:`GRID`) on ``train``, score it on ``valid``; best first.

    The TF-IDF features do not depend on ``C`` or the class weights, so each feature set is
    computed once and every classifier of the grid is fitted on it: the same fits as a pipeline
    per grid point, with a tenth of the vectorising.
    """
    grid = GRID if grid is None else grid
    rows = []
    labels = label_set(train["label"])
    titles, valid_titles = clean_titles(train["title"]), clean_titles(valid["title"])
    features = {}  # feature set -> (train matrix, validation matrix)
    for C, cw, feats in itertools.product(grid["C"], grid["class_weight"], grid["features"]):
        if feats not in features:
            union = build_features(feats)
            features[feats] = union.fit_transform(titles), union.transform(valid_titles)
        x_train, x_valid = features[feats]
        clf = build_classifier(C, cw).fit(x_train, train["label"])
        cols = [list(clf.classes_).index(label) for label in labels]
        pred = labels_from_proba(clf.predict_proba(x_valid)[:, cols], labels=labels)
        rows.append({"C": C, "class_weight": cw or "none", "features": feats,
                     "valid_macro_f1": macro_f1(valid["label"], pred, labels=labels)})
    return pd.DataFrame(rows).sort_values("valid_macro_f1", ascending=False, kind="stable")


class BaselineModel:
    """A fitted pipeline plus its metadata, with the lifecycle verbs every kind offers.

    Saved with :mod:`skops.io`, not pickle: loading a skops file cannot run code, and only the
    scikit-learn and NumPy types a TF-IDF pipeline is made of are trusted.
    """

    kind = "baseline"

    def __init__(self, pipe: Pipeline, meta: dict | None = None):
        self.pipe = pipe
        self.meta = meta or {"kind": self.kind}

    @classmethod
    def run_settings(cls) -> dict:
        """The settings a saved baseline must share to be reused: the grid it was tuned on."""
        return {"grid": GRID}

    @classmethod
    def train_on_split(cls, train: pd.DataFrame, valid: pd.DataFrame) -> BaselineModel:
        """Tune on validation, refit the best setting on train; the grid's scores go in ``meta``."""
        start = time.perf_counter()
        results = tune(train, valid)
        best = results.iloc[0]
        cw = None if best["class_weight"] == "none" else best["class_weight"]
        pipe = build_pipeline(best["C"], cw, best["features"]).fit(
            clean_titles(train["title"]), train["label"])
        return cls(pipe, {
            "kind": cls.kind,
            "labels": label_set(train["label"]),
            "hyperparameters": {"C": float(best["C"]), "class_weight": cw,
                                "features": best["features"]},
            "valid_macro_f1": float(best["valid_macro_f1"]),
            "train_seconds": round(time.perf_counter() - start, 2),
            "n_train": len(train),
            "grid": results.to_dict(orient="records"),
        })

    @property
    def grid(self) -> pd.DataFrame:
        """Validation macro-F1 of every setting tried, best first."""
        return pd.DataFrame(self.meta.get("grid", []))

    def predict_proba(self, titles: list[str]) -> np.ndarray:
        """One column per label, in ``meta["labels"]`` order (Fiction, Non-fiction by default)."""
        labels = model_labels(self.meta)
        if len(labels) == 2 and labels == list(LABELS):  # the book's models, exactly as before
            p = prob_fiction(self.pipe, list(titles))
            return np.column_stack([p, 1 - p])
        return proba(self.pipe, list(titles), labels)

    def save(self, folder: str | Path | None = None, **info) -> Path:
        folder = Path(folder) if folder else model_dir(self.kind)
        folder.mkdir(parents=True, exist_ok=True)
        forget_object_ids(self.pipe)
        sio.dump(self.pipe, folder / MODEL_FILE)
        canonical_skops(folder / MODEL_FILE)  # no memory addresses or times: the same bytes
        self.meta = write_meta(folder, self.kind, [MODEL_FILE],
                               **{**training_info(self.meta), **info})
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> BaselineModel:
        meta = checked_meta(folder, cls.kind)
        path = Path(folder) / MODEL_FILE
        try:
            untrusted = sio.get_untrusted_types(file=path)
            unexpected = [t for t in untrusted if not t.startswith(TRUSTED_PREFIXES)]
            if unexpected:
                raise ModelError(f"{path}: holds types the baseline never contains "
                                 f"({', '.join(unexpected[:3])}); refusing to load it")
            pipe = sio.load(path, trusted=untrusted)
        except ModelError:
            raise
        except Exception as exc:  # a damaged zip, a file from another skops version
            raise ModelError(f"{path}: cannot be read as a skops file ({exc})") from None
        return cls(pipe, meta)

    def evaluation_extra(self, folder: str | Path) -> dict:
        """Facts about training to keep beside the test metrics."""
        return {"train_seconds": self.meta.get("train_seconds")}


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
