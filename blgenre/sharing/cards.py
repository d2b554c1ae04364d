"""Model cards, a dataset card and a datasheet, generated from this run's artifacts.

Model cards follow Mitchell et al. (2019) and the Hugging Face model-card format: YAML metadata
(built with :class:`huggingface_hub.ModelCardData` and :class:`~huggingface_hub.EvalResult`, so
that the Hub shows the test results in its ``model-index`` widget) and Markdown sections. Every
number is read from ``artifacts/metrics/<model>.json`` and ``artifacts/models/<model>/model.json``;
nothing is typed in by hand.

The dataset card follows the Hugging Face dataset-card template and the datasheet answers the
questions of Gebru et al. (2021); their numbers are computed from the data with
:mod:`blgenre.data` and :mod:`blgenre.data.split`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
from huggingface_hub import DatasetCard, DatasetCardData, EvalResult, ModelCard, ModelCardData

from blgenre import __version__
from blgenre.data import BL_DOI, LABELS
from blgenre.errors import ModelError
from blgenre.evaluation.evaluate import MIN_GROUP, load_metrics
from blgenre.models import read_meta
from blgenre.paths import model_dir

#: The models the book can share, in the order the chapters train them.
MODELS = ("baseline", "fastai", "transformer")
LICENSE = "cc0-1.0"
DATASET_ID = "TheBritishLibrary/blbooksgenre"
DATASET_CONFIG = "annotated_raw"
DATASET_NAME = "British Library 19th-century books, crowdsourced genre (annotated titles)"
BOOK_URL = "https://github.com/blgenre-book/blgenre"
BOOK_TITLE = "Genre classification of 19th-century British Library books"
LIBRARY_NAME = {"baseline": "sklearn", "fastai": "fastai", "transformer": "transformers"}
#: ISO 639-1 codes (ISO 639-3 where there is no two-letter code) of the catalogue's languages.
ISO_639 = {
    "Czech": "cs", "Danish": "da", "Dutch": "nl", "English": "en", "Finnish": "fi",
    "French": "fr", "German": "de", "Greek": "el", "Hungarian": "hu", "Icelandic": "is",
    "Irish": "ga", "Italian": "it", "Latin": "la", "Norwegian": "no", "Polish": "pl",
    "Portuguese": "pt", "Romanian": "ro", "Russian": "ru", "Spanish": "es", "Swedish": "sv",
    "Welsh": "cy", "Scottish Gaelic": "gd", "Hebrew": "he", "Turkish": "tr",
}
WIDGET_TITLES = (
    "The Mystery of the Moat. A novel",
    "A Treatise on the Steam Engine",
    "Reise durch Norwegen",
    "Poems and Ballads",
)
#: Metric entries of the model-index: (metrics.json path, metric type, config, pretty name).
INDEX_METRICS = [
    (("macro_f1",), "f1", "macro", "Macro-F1 (test)"),
    (("accuracy",), "accuracy", None, "Accuracy (test)"),
    (("per_class", "Fiction", "f1"), "f1", "Fiction", "F1 Fiction (test)"),
    (("per_class", "Non-fiction", "f1"), "f1", "Non-fiction", "F1 Non-fiction (test)"),
]


def within_page(markdown: str, levels: int = 2) -> str:
    """A card's Markdown with its headings moved ``levels`` down, to show inside a book page.

    Shown as is, a card's ``# Title`` would become a second page title and its sections would
    sit beside the chapter's own. Headings inside fenced code blocks are left alone.
    """
    lines, fenced = [], False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(r"#{1,6} ", line):
            hashes = len(line) - len(line.lstrip("#"))
            line = "#" * min(hashes + levels, 6) + line[hashes:]
        lines.append(line)
    return "\n".join(lines)


# --------------------------------------------------------------------------- data facts
def language_codes(languages) -> list[str]:
    """ISO codes of the language names in ``languages`` (names as in the catalogue), sorted."""
    names = {part.strip() for value in languages for part in str(value).split(";")}
    return sorted({ISO_639[n] for n in names if n in ISO_639})


def model_languages(metrics: dict) -> list[str]:
    """ISO codes of the languages in the book's split (else in the model's test results)."""
    from blgenre.data import split

    try:
        return language_codes(split.load_split()["languages"])
    except Exception:  # noqa: BLE001 - no data here: fall back on the evaluated languages
        return language_codes(metrics.get("by_language", {}))


def data_facts() -> dict:
    """Numbers about the data for the dataset card and datasheet (all computed, none typed)."""
    from blgenre import data
    from blgenre.data import split

    raw, path = data.load_raw()
    books, report = data.load_books(path)
    info = split.split_info()
    langs = books["language"].value_counts()
    years = books["year"].dropna()
    facts = {
        "source_file": Path(path).name,
        "rows": len(raw),
        "columns": len(raw.columns),
        "books": len(books),
        "duplicate_rows": report.duplicate_rows,
        "conflicting_records": report.conflicting_records,
        "distinct_titles": int(raw["Title"].map(data.title_key).nunique()),
        "multi_row_books": int((books["n_rows"] > 1).sum()),
        "label_counts": {k: int(v) for k, v in books["label"].value_counts().items()},
        "fiction_share": float((books["label"] == LABELS[0]).mean()),
        "languages": {k: int(v) for k, v in langs.items()},
        "language_codes": language_codes(books["languages"]),
        "multilingual_books": int(books["multilingual"].sum()),
        "year_min": int(years.min()) if len(years) else None,
        "year_max": int(years.max()) if len(years) else None,
        "year_median": int(years.median()) if len(years) else None,
        "no_year": int(books["year"].isna().sum()),
        "decades": {k: int(v) for k, v in books["decade"].value_counts().sort_index().items()},
        "split_sizes": info["sizes"],
        "split_labels": info["label_counts"],
        "split_seed": info["seed"],
        "source_sha256": info["source_sha256"],
        "title_chars_median": int(books["title_chars"].median()),
    }
    try:
        ann = data.load_annotations()
    except Exception:  # noqa: BLE001 - the Zooniverse export is optional
        ann = None
    if ann is not None:
        genre = ann["genre"].map(data.normalise_label).replace("", "no answer")
        facts["zooniverse"] = {
            "classifications": len(ann),
            "volunteers": int(ann["user_name"].nunique()),
            "subjects": int(ann["subject_ids"].nunique()),
            "answers": {k: int(v) for k, v in genre.value_counts().items()},
        }
    return facts


# --------------------------------------------------------------------------- model facts
def _get(metrics: dict, path: tuple[str, ...]):
    value = metrics
    for key in path:
        value = value[key]
    return value


def eval_results(metrics: dict) -> list[EvalResult]:
    """The model-index entries for a model's test results (values straight from metrics JSON)."""
    return [
        EvalResult(
            task_type="text-classification", task_name="Genre classification of book titles",
            dataset_type=DATASET_ID, dataset_name=DATASET_NAME, dataset_config=DATASET_CONFIG,
            dataset_split="test", metric_type=mtype, metric_config=config,
            metric_name=pretty, metric_value=float(_get(metrics, path)),
        )
        for path, mtype, config, pretty in INDEX_METRICS
    ]


def expected_index(metrics: dict) -> dict[str, float]:
    """``{metric name: value}`` a card's model-index must hold for ``metrics``."""
    return {pretty: float(_get(metrics, path)) for path, _, _, pretty in INDEX_METRICS}


def card_index(card: ModelCard) -> dict[str, float]:
    """``{metric name: value}`` read back from a parsed card's model-index."""
    return {r.metric_name: float(r.metric_value) for r in card.data.eval_results or []}


def base_model(meta: dict) -> str | None:
    """The Hub id of the pretrained model a neural model started from, if any."""
    if meta["kind"] == "transformer":
        name = str(meta.get("checkpoint") or "")
        return name if name and not Path(name).is_absolute() else None
    return None


def pretraining_text(meta: dict, metrics: dict) -> str:
    """Which pretraining path the run took (from ``model.json``) and what it cost."""
    kind = meta["kind"]
    extra = metrics.get("extra", {})
    hw = meta.get("hardware", {})
    where = (f" on {hw.get('cpu_count', '?')} CPU cores ({hw.get('processor', 'unknown CPU')}, "
             f"GPU: {hw.get('gpu', 'none')})") if hw else " on the build machine's CPU"
    if kind == "baseline":
        secs = meta.get("train_seconds", extra.get("train_seconds"))
        return ("**No pretraining.** The baseline learns only from the training titles. The whole "
                f"validation grid search and the final fit took {_num(secs, '.1f')} s on the book's "
                "build machine (CPU); the pickled pipeline is "
                f"{_size(meta, 'model.joblib')}.")
    if kind == "fastai":
        path = meta.get("pretraining", "unknown")
        note = meta.get("pretraining_note", "")
        secs = meta.get("seconds", {})
        timing = ", ".join(f"{k}: {_num(v, '.0f')} s" for k, v in secs.items()) or "not recorded"
        if path == "wikitext-103":
            what = ("**Pretraining path: `wikitext-103`.** The AWD-LSTM language model started "
                    "from fastai's weights trained on English Wikipedia (WikiText-103), which "
                    "costs a download of the pretrained weights at training time, then was "
                    "fine-tuned on catalogue titles (ULMFiT).")
        else:
            what = ("**Pretraining path: `titles-only`.** The WikiText-103 weights were not "
                    "used, so the AWD-LSTM language model was trained from random weights on "
                    "catalogue titles alone (no test titles). This costs nothing to download but "
                    "gives the model far less general knowledge of language than ULMFiT's usual "
                    "start, and it knows only the vocabulary of these titles.")
        return (f"{what} Reason recorded in `model.json`: {note or 'not recorded'}. "
                f"Training time{where}: {timing}. Exported model: {_size(meta, 'model.pkl')}.")
    if kind == "transformer":
        name = meta.get("checkpoint", "unknown")
        source = meta.get("checkpoint_source", "unknown")
        secs = {k: v for k, v in {**meta, **extra}.items() if "seconds" in k and v is not None}
        timing = ", ".join(f"{k.replace('_', ' ')}: {_num(v, '.0f')} s" for k, v in secs.items())
        weights = _size(meta, "model.safetensors")
        return (f"**Pretraining path: checkpoint `{name}`** (obtained from {source}). Its "
                "pretraining on large general-domain English text was done by its authors; this "
                "run only fine-tuned it with a new two-class head. Fine-tuning cost"
                f"{where}: {timing or 'not recorded'}. Weights: {weights} (safetensors).")
    return ""


def _num(value, fmt: str) -> str:
    if value is None:
        return "?"
    try:
        return format(float(value), fmt)
    except (TypeError, ValueError):
        return str(value)


def _size(meta: dict, name: str) -> str:
    folder = meta.get("_folder")
    if folder and (Path(folder) / name).is_file():
        return f"{(Path(folder) / name).stat().st_size / 1e6:.1f} MB"
    return "size not recorded"


def usage_snippet(kind: str, repo_id: str | None = None) -> str:
    """Python that loads the shared model from a downloaded (or local) copy and classifies titles.

    The snippet runs with the model's folder as working directory (``folder = Path(".")``); the
    commented line shows how to download it from the Hub instead.
    """
    repo = repo_id or "USER/blgenre-" + kind
    head = ("from pathlib import Path\n\n"
            f"# folder = Path(huggingface_hub.snapshot_download(\"{repo}\"))  # from the Hub\n"
            "folder = Path(\".\")  # a local copy of this repository\n"
            "titles = [\"The Mystery of the Moat. A novel\", \"A Treatise on the Steam Engine\"]\n")
    check = ("import hashlib, json\n"
             "meta = json.loads((folder / \"model.json\").read_text())\n"
             "for name, digest in meta[\"files\"].items():  # check before unpickling anything\n"
             "    actual = hashlib.sha256((folder / name).read_bytes()).hexdigest()\n"
             "    assert actual == digest, f\"{name} was altered: do not load it\"\n")
    if kind == "baseline":
        body = ("import joblib  # scikit-learn pipeline: TF-IDF + logistic regression\n"
                "pipe = joblib.load(folder / \"model.joblib\")\n"
                "for title, label, p in zip(titles, pipe.predict(titles),\n"
                "                           pipe.predict_proba(titles).max(axis=1)):\n"
                "    print(f\"{label:12} {p:.2f}  {title}\")\n")
        return head + check + body
    if kind == "fastai":
        body = ("from fastai.learner import load_learner  # or huggingface_hub.from_pretrained_fastai\n"
                "learn = load_learner(folder / \"model.pkl\", cpu=True)\n"
                "for title in titles:\n"
                "    label, _, probs = learn.predict(title)\n"
                "    print(f\"{label:12} {float(probs.max()):.2f}  {title}\")\n")
        return head + check + body
    if kind == "transformer":
        body = ("from transformers import pipeline  # weights are safetensors: no pickle\n"
                "classify = pipeline(\"text-classification\", model=str(folder.resolve()))\n"
                "for title, result in zip(titles, classify(titles)):\n"
                "    print(f\"{result['label']:12} {result['score']:.2f}  {title}\")\n")
        return head + body
    raise ValueError(f"unknown model kind {kind!r}")


def _table(rows: list[dict]) -> str:
    if not rows:
        return "_(none)_\n"
    df = pd.DataFrame(rows)
    head = "| " + " | ".join(df.columns) + " |\n|" + "---|" * len(df.columns) + "\n"
    return head + "".join("| " + " | ".join(str(v) for v in r) + " |\n"
                          for r in df.itertuples(index=False))


def _group_rows(groups: dict, what: str) -> list[dict]:
    rows = []
    for key, g in sorted(groups.items(), key=lambda kv: -kv[1]["n"]):
        f1 = "n/a (one label)" if g["macro_f1"] is None else f"{g['macro_f1']:.3f}"
        rows.append({what: key, "test books": g["n"], "fiction": g["n_fiction"],
                     "accuracy": f"{g['accuracy']:.3f}", "macro-F1": f1,
                     "note": f"fewer than {MIN_GROUP}: do not compare" if g["too_small"] else ""})
    return rows


def model_card_body(name: str, meta: dict, metrics: dict, repo_id: str | None = None) -> str:
    """The Markdown sections of a model card (Mitchell et al. 2019)."""
    kind = meta["kind"]
    pc = metrics["per_class"]
    lo, hi = metrics["macro_f1_ci"]
    cm = metrics["confusion_matrix"]
    labels = cm["labels"]
    cm_rows = [{"true \\ predicted": t, **{p: cm["matrix"][i][j] for j, p in enumerate(labels)}}
               for i, t in enumerate(labels)]
    kind_text = {
        "baseline": "TF-IDF word and character n-grams with logistic regression (scikit-learn)",
        "fastai": "ULMFiT: an AWD-LSTM language model fine-tuned into a classifier (fastai)",
        "transformer": "a pretrained transformer fine-tuned for sequence classification "
                       "(Hugging Face transformers)",
    }[kind]
    hyper = json.dumps(meta.get("hyperparameters", meta.get("settings", {})), default=str)
    languages = sorted(metrics["by_language"], key=lambda k: -metrics["by_language"][k]["n"])
    small = [k for k, g in metrics["by_language"].items() if g["too_small"]]
    versions = meta.get("versions", {})
    libs = ", ".join(f"{k} {v}" for k, v in versions.items() if v != "not installed")
    files = "\n".join(f"- `{n}`: sha256 `{d}`" for n, d in meta.get("files", {}).items())
    per_class = "".join(
        f"| F1 {k} | {v['f1']:.3f} (precision {v['precision']:.3f}, recall {v['recall']:.3f}, "
        f"{v['support']} books) |\n" for k, v in pc.items())
    return f"""
# blgenre {name}: genre of 19th-century book titles

Classifies the title of a 19th-century book from the British Library's digitised collection as
**Fiction** or **Non-fiction**. Trained and documented in the open book *{BOOK_TITLE}*
({BOOK_URL}); this card was generated from that run by `blgenre.sharing.cards`.

## Model details

- **Model type:** {kind_text}.
- **Version:** blgenre {__version__}, trained {meta.get('created', 'unknown')}.
- **Developed by:** the blgenre book contributors.
- **Labels:** {', '.join(meta.get('labels', LABELS))}.
- **Hyper-parameters** (chosen on the validation split only): `{hyper}`
- **Software:** {libs}.
- **License:** CC0-1.0 (like the data).
- **Pretraining and cost.** {pretraining_text(meta, metrics)}

## Intended uses

- Suggesting a genre for titles of 19th-century books in library, archive and museum
  (GLAM) catalogues, as a first sort for human review: for example, to find candidate fiction
  in a digitised collection or to prioritise records for cataloguing.
- Teaching and research on machine learning with catalogue metadata.

## Out-of-scope uses

- Replacing a cataloguer's genre or form heading (MARC 655 / FAST) without human review.
- Titles from other centuries, other collections or other languages than those in the
  training data; modern book titles; full texts (it only ever saw titles).
- Any decision about people (authors, volunteers, readers).

## Factors

Results are reported by **language** (the catalogue's first-listed language) and by **decade of
publication**, because the collection is dominated by English, Dutch and Scandinavian books and
title conventions change over the century. Groups with fewer than {MIN_GROUP} test books are
flagged: their scores are too uncertain to compare.

## Metrics

Macro-F1 (the mean of the F1 of the two classes) is the headline metric, because only about a
quarter of the books are fiction and accuracy rewards always answering *Non-fiction*. Its 95%
confidence interval is a percentile bootstrap over test titles
({metrics.get('ci', {}).get('n', '?')} resamples). Accuracy and per-class precision, recall and
F1 are also given. The decision threshold is 0.5 on the probability of Fiction.

## Evaluation data

The test part of the book's single split of the British Library data (DOI {BL_DOI}):
{metrics['n']} books, none sharing a normalised title or a BL record with a training or
validation book. Labels are volunteers' answers from the crowdsourcing project (not a
cataloguer's judgement).

## Training data

The training part of the same split ({meta.get('n_train', '?')} books); settings were chosen on
the validation part. See the dataset card and datasheet for how the data was collected.

## Quantitative analyses

| metric | value |
|---|---|
| macro-F1 (test) | {metrics['macro_f1']:.3f} (95% CI {lo:.3f}–{hi:.3f}) |
| accuracy (test) | {metrics['accuracy']:.3f} |
{per_class}
Confusion matrix (test):

{_table(cm_rows)}
### By language

{_table(_group_rows(metrics['by_language'], 'language'))}
### By decade

{_table(_group_rows(metrics['by_decade'], 'decade'))}
## Ethical considerations

- The data is a *digitised* collection: what the British Library chose, and could afford, to
  digitise. Its language mix ({', '.join(languages[:5])}, ...) is not that of 19th-century
  publishing, and the model has partly learned that selection (for example, "this title is
  Scandinavian" correlates with non-fiction).
- Labels come from volunteers on Zooniverse answering from the title page and catalogue
  record; some answers may be attached to the wrong book (see the book's data audit).
- "Fiction" versus "Non-fiction" is a simplification: many books mix both.
- No personal data about living people is used; volunteer names are not part of the model.

## Caveats and recommendations

- The test set is small; differences between models inside the confidence interval above are
  noise. Results for {', '.join(small) or 'no language'} rest on fewer than {MIN_GROUP} test
  books each.
- Check a sample of predictions for your own collection before relying on it, and keep a
  human in the loop for catalogue records.
- Loading a pickled model (scikit-learn `.joblib`, fastai `.pkl`) runs code: verify the sha256
  of the files against `model.json` first (the snippet below does), or use the safetensors
  transformer.

## How to use

```python
{usage_snippet(kind, repo_id)}```

## Integrity

{files}

## Citation

Data: British Library (2021), *19th Century Books - metadata with additional crowdsourced
annotations*, https://doi.org/{BL_DOI}. Model: the blgenre book contributors (2026), *{BOOK_TITLE}*,
version {__version__}, {BOOK_URL}.
"""


def model_card(name: str, folder: str | Path | None = None, repo_id: str | None = None,
               metrics: dict | None = None) -> ModelCard:
    """The model card of model ``name`` built from its ``model.json`` and metrics JSON."""
    folder = Path(folder) if folder else model_dir(name)
    meta = read_meta(folder)
    meta["_folder"] = str(folder)
    metrics = metrics if metrics is not None else load_metrics(name)
    if metrics is None:
        raise ModelError(f"no metrics for {name!r} (artifacts/metrics/{name}.json): evaluate it first")
    data = ModelCardData(
        model_name=f"blgenre-{name}",
        license=LICENSE,
        language=model_languages(metrics),
        library_name=LIBRARY_NAME[meta["kind"]],
        base_model=base_model(meta),
        datasets=[DATASET_ID],
        metrics=["f1", "accuracy"],
        pipeline_tag="text-classification",
        tags=["glam", "libraries", "genre", "british-library", "19th-century", meta["kind"]],
        eval_results=eval_results(metrics),
        widget=[{"text": t} for t in WIDGET_TITLES],
    )
    body = model_card_body(name, meta, metrics, repo_id)
    return ModelCard(f"---\n{data.to_yaml()}\n---\n{body}")


def snippet_from_card(text: str) -> str:
    """The Python code of a card's *How to use* section."""
    match = re.search(r"## How to use\s+```python\n(.*?)```", text, re.S)
    if not match:
        raise ValueError("card has no usage snippet")
    return match.group(1)


# --------------------------------------------------------------------------- dataset card
def _lang_rows(facts: dict) -> list[dict]:
    n = facts["books"]
    return [{"language": k, "code": ISO_639.get(k, "–"), "books": v, "share": f"{v / n:.1%}"}
            for k, v in facts["languages"].items()]


def dataset_card(facts: dict | None = None) -> DatasetCard:
    """A Hugging Face dataset card for the annotated titles as the book uses them."""
    f = facts or data_facts()
    data = DatasetCardData(
        pretty_name=DATASET_NAME,
        language=f["language_codes"],
        license=LICENSE,
        annotations_creators=["crowdsourced"],
        language_creators=["expert-generated"],
        multilinguality="multilingual",
        size_categories="1K<n<10K",
        source_datasets=["extended|" + DATASET_ID],
        task_categories=["text-classification"],
        task_ids=["topic-classification"],
        tags=["glam", "libraries", "british-library", "19th-century", "genre"],
    )
    lc = f["label_counts"]
    split_rows = [{"part": s, "books": n, **f["split_labels"][s]} for s, n in f["split_sizes"].items()]
    z = f.get("zooniverse")
    zoo = (f"The export of the crowdsourcing task holds {z['classifications']:,} classifications "
           f"by {z['volunteers']} (pseudonymised) volunteers of {z['subjects']:,} subjects; "
           f"answers: {', '.join(f'{k} {v:,}' for k, v in z['answers'].items())}."
           if z else "The Zooniverse export was not available to this build.")
    body = f"""
# Dataset card: {DATASET_NAME}

## Dataset description

- **Source:** British Library, *19th Century Books - metadata with additional crowdsourced
  annotations*, https://doi.org/{BL_DOI} (also `{DATASET_ID}`, config `{DATASET_CONFIG}`).
- **Used here:** the annotated rows (`{f['source_file']}`, sha256 `{f['source_sha256']}`), cleaned by
  `blgenre.data.load_books`.
- **License:** CC0 1.0 (public domain dedication by the British Library).

### Summary

{f['rows']:,} catalogue rows ({f['columns']} columns) describe {f['books']:,} distinct books (BL
record ids) that volunteers labelled *Fiction* or *Non-fiction*: {lc.get('Fiction', 0):,} fiction
and {lc.get('Non-fiction', 0):,} non-fiction ({f['fiction_share']:.1%} fiction). They were
published between {f['year_min']} and {f['year_max']} (median {f['year_median']}; {f['no_year']}
without a readable year).

### Supported tasks

`text-classification`: predict the genre label from the title (the book's task), or from other
catalogue fields.

### Languages

{f['multilingual_books']} books list more than one language; the table counts the first.

{_table(_lang_rows(f))}
## Dataset structure

One row per catalogue record in the source; after cleaning, one row per book with `record_id`,
`title`, `label`, `year`, `decade`, `language`, `languages`, `name`, `place`, `publisher`.

### Data splits

The book's split is grouped (no normalised title and no record in two parts) and stratified by
label, seed {f['split_seed']}:

{_table(split_rows)}
## Dataset creation

### Curation rationale

The annotations were made to study and improve genre metadata for the British Library's
digitised 19th-century books (Microsoft / British Library digitisation), where most records
have no genre heading.

### Source data

MARC catalogue records of the digitised books: title, names, place, publisher, date,
languages, plus the crowdsourced columns.

### Annotations

Volunteers on Zooniverse saw a book's title page and record and answered questions about it,
including its genre. {zoo}

### Personal and sensitive information

Author names of 19th-century books (public record). Volunteer names appear only pseudonymised
in the export and are not used by the models.

## Considerations for using the data

### Social impact and biases

A digitised collection is a selection: the language mix above reflects what was digitised, not
what was published. Genre is reduced to two labels.

### Other known limitations

- Duplicates: {f['rows']:,} rows but {f['books']:,} books ({f['duplicate_rows']:,} repeated rows)
  and {f['distinct_titles']:,} distinct normalised titles; an ungrouped split leaks.
- For many non-English rows the annotator-entered date disagrees with the catalogue's date,
  which may mean that some answers were attached to the wrong book.

## Additional information

- **Citation:** British Library (2021). https://doi.org/{BL_DOI}
- **Card generated by** `blgenre.sharing.cards.dataset_card` (blgenre {__version__}).
"""
    return DatasetCard(f"---\n{data.to_yaml()}\n---\n{body}")


def datasheet(facts: dict | None = None) -> str:
    """A datasheet (Gebru et al. 2021) for the data as the book uses it, in Markdown."""
    f = facts or data_facts()
    lc = f["label_counts"]
    langs = ", ".join(f"{k} ({v})" for k, v in f["languages"].items())
    z = f.get("zooniverse")
    zoo = (f"The export used by the book holds {z['classifications']:,} classifications from "
           f"{z['volunteers']} volunteers on {z['subjects']:,} subjects."
           if z else "The Zooniverse export was not available to this build.")
    return f"""# Datasheet: {DATASET_NAME}

## Motivation

**For what purpose was the dataset created?** To add genre information (fiction or not) to the
catalogue records of the British Library's digitised 19th-century books, most of which have
no genre or form term, and to support research on the collection.
**Who created it?** The British Library (digital scholarship and curatorial staff) with
volunteers on the Zooniverse platform; published 2021 (DOI {BL_DOI}).

## Composition

**What do the instances represent?** Catalogue records of printed books. The book uses the
{f['rows']:,} annotated rows, which describe {f['books']:,} distinct books.
**Labels:** {lc.get('Fiction', 0):,} Fiction, {lc.get('Non-fiction', 0):,} Non-fiction
({f['fiction_share']:.1%} fiction).
**Languages (first listed):** {langs}.
**Dates:** {f['year_min']}–{f['year_max']} (median {f['year_median']}); {f['no_year']} without a year.
**Is it a sample?** Yes, twice over: the digitised books are a selection of the Library's
holdings (chosen for digitisation partly by copyright status, condition and partner priorities),
and the annotated records are a subset of those ({f['rows']:,} of about 55,000 rows).
**Redundancies:** {f['duplicate_rows']:,} rows repeat a record already seen;
{f['distinct_titles']:,} distinct normalised titles; {f['multi_row_books']:,} books have more than one row;
{f['conflicting_records']} records have conflicting labels.
**Is there a recommended split?** The original authors' split groups by title; the book's split
(seed {f['split_seed']}) groups by normalised title and record: {f['split_sizes']}.
**Confidential or personal data?** No living persons beyond pseudonymised volunteer names in
the Zooniverse export.

## Collection process

The catalogue data comes from MARC 21 bibliographic records, the library standard for
machine-readable cataloguing; genre and form terms, where present, come from FAST (Faceted
Application of Subject Terminology), a simplified vocabulary derived from the Library of
Congress Subject Headings. The genre labels were collected by crowdsourcing on Zooniverse:
volunteers were shown a book's digitised title page and record and answered a set of questions
(genre: fiction, non-fiction, both or can't tell; language; dates; other details). {zoo}
Several volunteers could classify the same book.

## Preprocessing, cleaning and labelling

`blgenre.data.clean` keeps annotated rows with a Fiction / Non-fiction answer, normalises
whitespace in titles, drops records whose rows disagree ({f['conflicting_records']}), keeps one
row per record, and derives `year`, `decade` and the first-listed `language`. The raw file is
kept unchanged (sha256 `{f['source_sha256']}`).

## Uses

**Used for:** training and evaluating the book's genre classifiers; studying the collection.
**Should not be used for:** conclusions about 19th-century publishing as a whole (the sample is
a digitised selection); replacing cataloguers' headings without review.

## Distribution

CC0 1.0 from the British Library research repository (https://doi.org/{BL_DOI}) and the
Hugging Face Hub (`{DATASET_ID}`). The book does not redistribute the data; it downloads it or
reads a local copy named by `BLGENRE_DATA`.

## Maintenance

The British Library maintains the deposit. Errors found in the book (e.g. dates that suggest
answers attached to the wrong record) are reported in its audit chapter; fixed versions would
get a new version of the DOI. The book's own copies are checked for fixity (sha256, BagIt).
"""


def write_cards(root: str | Path) -> dict[str, Path]:
    """Write the dataset card and datasheet under ``root``; return their paths."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    facts = data_facts()
    out = {"dataset_card": root / "README.md", "datasheet": root / "DATASHEET.md",
           "facts": root / "facts.json"}
    dataset_card(facts).save(out["dataset_card"])
    out["datasheet"].write_text(datasheet(facts))
    out["facts"].write_text(json.dumps(facts, indent=2))
    return out

