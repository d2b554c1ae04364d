"""Training any of the book's model kinds on a reader's own labelled titles: ``blgenre train``.

Serves the chapter 'Your own collection'. A library with its own labelled titles, or its own
categories (poetry / drama / prose fiction / non-fiction, say), gives a CSV with a text column
and a label column. The titles are split into training, validation and test parts the way the
book splits its own data (seeded; titles that are the same after normalisation, and rows that
share a record id, stay in one part; stratified by label), the chosen kind is trained with its
usual recipe (settings chosen on validation), scored once on test with the book's harness
(macro-F1 with a bootstrap interval, per-label precision / recall / F1, confusion matrix), and
saved as a model folder that ``predict``, the app and the Hub tools read: ``model.json`` with
the labels, the weights, ``validation.csv`` (for choosing thresholds) and a model card
(``README.md``).
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from blgenre.data.text import clean_titles
from blgenre.errors import DataError, InputError
from blgenre.integrity import sha256_file
from blgenre.models import registry
from blgenre.models.lifecycle import add_to_meta, label_set, read_meta
from blgenre.seed import SEED

#: Fewest examples of a label: with a 70/15/15 split, fewer leaves validation or test without any.
MIN_PER_LABEL = 10
METRICS_FILE = "metrics.json"
CARD_FILE = "README.md"


def read_labelled(path: str | Path, text_column: str = "title", label_column: str = "genre",
                  id_column: str | None = None) -> tuple[pd.DataFrame, dict]:
    """``title``, ``label``, ``record_id`` rows of a labels CSV, and what was left out and why."""
    from blgenre.data.loading import read_csv_checked

    path = Path(path)
    required = tuple(c for c in (text_column, label_column, id_column) if c)
    frame = read_csv_checked(path, required)
    titles = pd.Series(clean_titles(frame[text_column]), index=frame.index)
    labels = frame[label_column].astype(str).str.strip()
    ids = (frame[id_column].astype(str).str.strip() if id_column
           else pd.Series([f"row {i + 2}" for i in range(len(frame))], index=frame.index))
    keep = (titles != "") & (labels != "")
    report = {"rows": int(len(frame)), "no_text": int((titles == "").sum()),
              "no_label": int(((titles != "") & (labels == "")).sum())}
    books = pd.DataFrame({"title": titles[keep], "label": labels[keep],
                          "record_id": ids[keep]}).reset_index(drop=True)
    if books.empty:
        raise DataError(f"{path}: no row has both a {text_column!r} and a {label_column!r}")
    counts = books["label"].value_counts()
    if len(counts) < 2:
        raise DataError(f"{path}: column {label_column!r} has a single label "
                        f"({counts.index[0]!r}); a classifier needs at least two")
    few = counts[counts < MIN_PER_LABEL]
    if len(few):
        shown = ", ".join(f"{k!r} has {v}" for k, v in few.items())
        raise DataError(f"{path}: too few examples: {shown}; every label needs at least "
                        f"{MIN_PER_LABEL} (so that training, validation and test each get some)")
    report["per_label"] = {str(k): int(v) for k, v in counts.sort_index().items()}
    return books, report


def split_own(books: pd.DataFrame, seed: int = SEED) -> pd.DataFrame:
    """The book's grouped, stratified, seeded split (:func:`blgenre.data.split.make_split`)."""
    import warnings

    from blgenre.data.split import make_split

    with warnings.catch_warnings():  # a label with fewer books than folds: still stratified
        warnings.filterwarnings("ignore", message=".*least populated class.*")
        return make_split(books, seed)


def evaluate_own(test: pd.DataFrame, probs: np.ndarray, labels: list[str]) -> dict:
    """The book's harness for any number of labels: metrics, bootstrap interval of macro-F1."""
    from blgenre.evaluation.evaluate import (
        N_BOOTSTRAP,
        bootstrap_ci,
        classification_metrics,
        labels_from_proba,
        macro_f1,
    )

    pred = labels_from_proba(probs, labels=labels)
    result = classification_metrics(test["label"], pred, labels)
    lo, hi = bootstrap_ci(test["label"], pred, metric=partial(macro_f1, labels=labels))
    result["macro_f1_ci"] = [lo, hi]
    result["ci"] = {"method": "percentile bootstrap over test titles", "n": N_BOOTSTRAP,
                    "level": 0.95}
    return result


def per_label_table(metrics: dict) -> pd.DataFrame:
    """Precision, recall, F1 and support per label."""
    return pd.DataFrame(metrics["per_class"]).T.rename_axis("label").round(3)


@dataclass
class OwnResult:
    """What ``blgenre train`` did."""

    folder: Path
    kind: str
    labels: list[str]
    sizes: dict
    metrics: dict
    report: dict

    def summary(self) -> str:
        lo, hi = self.metrics["macro_f1_ci"]
        table = per_label_table(self.metrics).to_string()
        return (f"trained a {self.kind} model on {sum(self.sizes.values())} titles "
                f"({', '.join(f'{k} {v}' for k, v in self.sizes.items())}); labels "
                f"{self.labels}\ntest macro-F1 {self.metrics['macro_f1']:.3f} (95% CI "
                f"{lo:.3f}-{hi:.3f}), accuracy {self.metrics['accuracy']:.3f}\n{table}\n"
                f"model folder: {self.folder} (model card: {self.folder / CARD_FILE})")


def _check_out(out: Path, labels_path: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is a file; --out must be a folder")
    if out.resolve() == labels_path.resolve().parent or labels_path.resolve().is_relative_to(
            out.resolve()):
        raise InputError(f"{out}: the labels file {labels_path} is inside it; choose another "
                         "folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise InputError(f"{out}: already exists and is not empty; pass --overwrite to replace it")


def train_own(kind: str, labels_csv: str | Path, out: str | Path, text_column: str = "title",
              label_column: str = "genre", id_column: str | None = None, seed: int = SEED,
              overwrite: bool = False) -> OwnResult:
    """Train kind ``kind`` on a labels CSV; write the model folder ``out``; return the result."""
    labels_csv, out = Path(labels_csv), Path(out)
    kind_info = registry.get(kind)
    _check_out(out, labels_csv, overwrite)
    books, report = read_labelled(labels_csv, text_column, label_column, id_column)
    books = split_own(books, seed)
    train, valid, test = (books[books["split"] == s].reset_index(drop=True)
                          for s in ("train", "valid", "test"))
    labels = label_set(books["label"])
    missing = [f"{s}: {', '.join(sorted(set(labels) - set(p['label'])))}"
               for s, p in (("train", train), ("valid", valid)) if set(labels) - set(p["label"])]
    if missing:
        raise DataError(f"{labels_csv}: after splitting, some labels have no examples in "
                        f"({'; '.join(missing)}); add examples of them")
    cls = kind_info.model_class()
    extra = {"lm_titles": pd.concat([train, valid])["title"].tolist()} if kind == "fastai" else {}
    model = cls.train_on_split(train, valid, **extra)
    if out.exists():
        shutil.rmtree(out)
    data_info = {"file": labels_csv.name, "sha256": sha256_file(labels_csv),
                 "text_column": text_column, "label_column": label_column,
                 "id_column": id_column, "seed": seed, "report": report,
                 "sizes": {s: int(len(p)) for s, p in (("train", train), ("valid", valid),
                                                        ("test", test))}}
    model.save(out, name=out.resolve().name, own_data=data_info)
    # the validation titles and labels, for choosing --marc-out thresholds later
    valid[["record_id", "title", "label"]].to_csv(out / "validation.csv", index=False)
    meta = add_to_meta(out, "files", {**read_meta(out)["files"],
                                      "validation.csv": sha256_file(out / "validation.csv")})
    metrics = evaluate_own(test, model.predict_proba(test["title"].tolist()), labels)
    metrics["model"] = meta.get("name")
    (out / METRICS_FILE).write_text(json.dumps(metrics, indent=2))
    (out / CARD_FILE).write_text(own_card(meta, metrics, data_info))
    return OwnResult(out, kind, labels, data_info["sizes"], metrics, report)


def own_card(meta: dict, metrics: dict, data: dict) -> str:
    """A model card (Hugging Face format: YAML metadata, then Markdown) for a model trained here."""
    from huggingface_hub import ModelCard, ModelCardData
    from huggingface_hub.repocard_data import EvalResult

    kind = registry.get(meta["kind"])
    labels = meta["labels"]
    lo, hi = metrics["macro_f1_ci"]
    results = [EvalResult(task_type="text-classification", task_name="Title classification",
                          dataset_type=data["file"], dataset_name=data["file"],
                          dataset_split="test", metric_type="f1", metric_config="macro",
                          metric_name="Macro-F1 (test)", metric_value=float(metrics["macro_f1"]))]
    card_data = ModelCardData(model_name=meta.get("name"), library_name=kind.library_name,
                              pipeline_tag="text-classification", metrics=["f1", "accuracy"],
                              tags=["glam", "libraries", "blgenre", kind.name],
                              eval_results=results)
    cm = metrics["confusion_matrix"]
    matrix = pd.DataFrame(cm["matrix"], index=cm["labels"], columns=cm["labels"])
    per_label = per_label_table(metrics)
    files = "\n".join(f"- `{n}`: sha256 `{d}`" for n, d in meta.get("files", {}).items())
    sizes = data["sizes"]
    body = f"""
# {meta.get('name')}: {' / '.join(labels)}

A {kind.description} trained with `python -m blgenre train` (the open book *Genre
classification of 19th-century British Library books*) on the labelled titles in
`{data['file']}` (sha256 `{data['sha256'][:16]}...`), column `{data['text_column']}` for the text
and `{data['label_column']}` for the label.

## Labels and data

- **Labels** (columns of `predict_proba`, in this order): {', '.join(labels)}.
- **Examples per label:** {', '.join(f'{k} {v}' for k, v in data['report']['per_label'].items())}.
- **Split** (seeded, seed {data['seed']}; equal normalised titles and equal record ids stay in
  one part; stratified by label): {sizes['train']} training, {sizes['valid']} validation,
  {sizes['test']} test titles. Settings were chosen on validation only.
- Rows left out: {data['report']['no_text']} without text, {data['report']['no_label']} without
  a label.

## Evaluation (test part, {metrics['n']} titles)

Macro-F1 **{metrics['macro_f1']:.3f}** (95% bootstrap interval {lo:.3f}-{hi:.3f}), accuracy
{metrics['accuracy']:.3f}.

{per_label.to_markdown() if _has_tabulate() else per_label.to_string()}

Confusion matrix (rows: true label, columns: predicted):

{matrix.to_markdown() if _has_tabulate() else matrix.to_string()}

## Use and limitations

The model learned from these titles only: check a sample of its predictions on your own records
before relying on them, and keep a person in the loop for catalogue records. With few test
titles per label, the interval above is wide; differences inside it are noise.

```
python -m blgenre predict --model {meta.get('name')} --input records.mrc --output predictions.csv
```

## Integrity

{files}
"""
    return str(ModelCard(f"---\n{card_data.to_yaml()}\n---\n{body}"))


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


# --------------------------------------------------------------------------- the chapter's demo
POETRY_DRAMA = re.compile(r"poetry|poems|verse|drama|plays|odes|songs|ballads|tragedies|"
                          r"comedies|operas|librettos|hymns|elegies|sonnets|epic", re.I)
FICTION_TERMS = re.compile(r"fiction|novels|short stories|romances|tales|fables", re.I)


def fast_terms(cell: str) -> list[str]:
    """The ``$a`` values of FAST genre headings as volunteers pasted them (``$``, ``ǂ`` or ``‡``)."""
    return [m.strip(" .") for m in re.findall(r"[$ǂ‡]\s*a\s*([^$ǂ‡\n]+)", cell or "")]


def three_genres(annotations: pd.DataFrame | None = None) -> pd.DataFrame:
    """Fiction / Poetry and drama / Non-fiction from the crowdsourcing export's FAST genre terms.

    A book is *Poetry and drama* if a volunteer gave it a FAST poetry or drama heading,
    *Fiction* if a fiction heading (novels, short stories...) and no poetry or drama one, and
    *Non-fiction* if volunteers answered Non-fiction and gave no such heading. Books answered
    Fiction without any heading are left out (prose or verse cannot be told). One row per book
    (``record_id``), its label the most frequent over its classifications.
    """
    from blgenre import data

    ann = data.load_annotations() if annotations is None else annotations
    rows = []
    for rid, title, genre, cell in zip(ann["BL record ID"], ann["title"], ann["genre"],
                                       ann["FAST_genre_terms"], strict=True):
        terms = " ; ".join(fast_terms(cell))
        if POETRY_DRAMA.search(terms):
            label = "Poetry and drama"
        elif FICTION_TERMS.search(terms):
            label = "Fiction"
        elif genre == "Non-fiction":
            label = "Non-fiction"
        else:
            continue
        rows.append({"record_id": str(rid).strip(), "title": data.normalise_title(title),
                     "genre": label})
    frame = pd.DataFrame(rows)
    frame = frame[frame["title"] != ""]
    top = (frame.groupby(["record_id", "genre"]).size().rename("n").reset_index()
           .sort_values(["record_id", "n", "genre"], ascending=[True, False, True])
           .drop_duplicates("record_id"))
    titles = frame.drop_duplicates("record_id").set_index("record_id")["title"]
    return top.assign(title=top["record_id"].map(titles))[["record_id", "title", "genre"]] \
        .reset_index(drop=True)
