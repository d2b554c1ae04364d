"""Model cards, a dataset card and a datasheet, generated from this run's artifacts.

Chapters *Model cards* and *Sharing data and keeping it safe*. Model cards follow Mitchell et
al. (2019) and the Hugging Face model-card format: YAML metadata (built with
:class:`huggingface_hub.ModelCardData` and :class:`~huggingface_hub.EvalResult`, so that the Hub
shows the test results in its ``model-index`` widget) and Markdown sections. The dataset card
follows the Hugging Face dataset-card template and the datasheet answers the questions of Gebru
et al. (2021).

The words are Jinja2 templates in ``blgenre/sharing/templates/`` (see
:mod:`blgenre.sharing.templating`), which library staff can edit without touching Python. This
module only gathers the facts they are filled with: ``artifacts/metrics/<model>.json``, the
model's ``model.json``, its record in :mod:`blgenre.models.registry`, and the data facts
computed with :mod:`blgenre.data` and :mod:`blgenre.data.split`. Nothing is typed in by hand,
and no kind of model is named here: per-kind wording is a template fragment chosen by the kind's
name.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from huggingface_hub import DatasetCard, DatasetCardData, EvalResult, ModelCard, ModelCardData

from blgenre import __version__
from blgenre.book.config import repository_url
from blgenre.data import BL_DOI, LABELS
from blgenre.errors import ModelError
from blgenre.evaluation.evaluate import (
    FICTION_THRESHOLD,
    MIN_GROUP,
    MODELS,  # noqa: F401 - the kinds (live registry view), for share
    load_metrics,
)
from blgenre.models import read_meta, registry
from blgenre.paths import model_dir
from blgenre.runinfo import stable
from blgenre.sharing import templating

LICENSE = "cc0-1.0"
DATASET_ID = "TheBritishLibrary/blbooksgenre"
DATASET_CONFIG = "annotated_raw"
DATASET_NAME = "British Library 19th-century books, crowdsourced genre (annotated titles)"
BOOK_TITLE = "Genre classification of 19th-century British Library books"
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
    """The Hub id of the pretrained checkpoint a model started from (``checkpoint`` in
    ``model.json``), if it has one and it is not a local path."""
    name = str(meta.get("checkpoint") or "")
    return name if name and not Path(name).is_absolute() else None


def file_size(folder: str | Path | None, name: str) -> str:
    """Size of file ``name`` in a model folder, for a card ('size not recorded' if absent)."""
    path = Path(folder) / name if folder else None
    if path is not None and path.is_file():
        return f"{path.stat().st_size / 1e6:.1f} MB"
    return "size not recorded"


def timings(meta: dict, extra: dict) -> dict[str, float]:
    """Every number recorded under a key with 'seconds' in ``model.json`` and the metrics' extra."""
    return {k.replace("_", " "): v for k, v in {**meta, **extra}.items()
            if "seconds" in k and isinstance(v, (int, float)) and not isinstance(v, bool)}


def pretraining_text(meta: dict, metrics: dict, folder: str | Path | None = None) -> str:
    """The kind's ``pretraining/<kind>.md.j2`` fragment: pretraining path and cost, on one line."""
    kind = registry.get(meta["kind"])
    extra = metrics.get("extra") or {}
    text = templating.fragment(
        "pretraining", kind.name, kind=kind, meta=meta, metrics=metrics, extra=extra,
        hardware=meta.get("hardware") or {}, timings=timings(meta, extra),
        main_size=file_size(folder, kind.main_file))
    return " ".join(text.split())


def usage_snippet(kind: str, repo_id: str | None = None) -> str:
    """Python that loads the shared model from a downloaded (or local) copy and classifies titles.

    The snippet (``templates/usage.py.j2`` around the kind's ``usage`` in the registry) runs with
    the model's folder as working directory and checks every file's sha256 before loading.
    """
    record = registry.get(kind)
    text = templating.render("usage.py.j2", kind=record, repo=repo_id or f"USER/blgenre-{kind}")
    return text.rstrip("\n") + "\n"


def _largest_first(groups: dict) -> list[tuple[str, dict]]:
    return sorted(groups.items(), key=lambda kv: -kv[1]["n"])


def card_context(name: str, meta: dict, metrics: dict, repo_id: str | None = None,
                 folder: str | Path | None = None) -> dict:
    """Everything ``model_card.md.j2`` is filled with (its opening comment lists the names)."""
    kind = registry.get(meta["kind"])
    versions = meta.get("versions", {})
    return {
        "name": name, "kind": kind, "meta": meta, "metrics": metrics,
        "by_language": _largest_first(metrics["by_language"]),
        "by_decade": _largest_first(metrics["by_decade"]),
        "languages": [k for k, _ in _largest_first(metrics["by_language"])],
        "small_languages": [k for k, g in metrics["by_language"].items() if g["too_small"]],
        "software": [f"{k} {v}" for k, v in versions.items() if v != "not installed"],
        "hyperparameters": json.dumps(meta.get("hyperparameters", meta.get("settings", {})),
                                      default=str),
        "pretraining": pretraining_text(meta, metrics, folder),
        "usage": usage_snippet(kind.name, repo_id),
        "safe_kinds": [registry.get(n) for n in registry.names() if not registry.get(n).pickled],
        "min_group": MIN_GROUP, "threshold": FICTION_THRESHOLD, "labels": list(LABELS),
        "version": __version__, "book_title": BOOK_TITLE, "book_url": repository_url(), "doi": BL_DOI,
    }


def from_template(card_class, card_data, template: str, /, **context):
    """``card_class.from_template`` with ``templates/<template>``, after a strict trial render.

    huggingface_hub renders undefined names as blanks; the trial render (same template, same
    names) turns a misspelt name into a one-line :class:`~blgenre.sharing.templating.TemplateError`.
    """
    templating.render(template, **{**card_data.to_dict(), "card_data": card_data.to_yaml(),
                                   **context})
    card = card_class.from_template(card_data, template_path=str(templating.template_path(template)),
                                    **context)
    card.text = card.text.rstrip("\n") + "\n"  # jinja2.Template drops the file's final newline
    return card


def model_card(name: str, folder: str | Path | None = None, repo_id: str | None = None,
               metrics: dict | None = None) -> ModelCard:
    """The model card of model ``name`` built from its ``model.json`` and metrics JSON."""
    folder = Path(folder) if folder else model_dir(name)
    meta = stable(read_meta(folder))  # no build times or machine: a card is the same every build
    metrics = metrics if metrics is not None else load_metrics(name)
    if metrics is None:
        raise ModelError(f"no metrics for {name!r} (artifacts/metrics/{name}.json): evaluate it first")
    metrics = stable(metrics)
    kind = registry.get(meta["kind"])
    data = ModelCardData(
        model_name=f"blgenre-{name}",
        license=LICENSE,
        language=model_languages(metrics),
        library_name=kind.library_name,
        base_model=base_model(meta),
        datasets=[DATASET_ID],
        metrics=["f1", "accuracy"],
        pipeline_tag="text-classification",
        tags=["glam", "libraries", "genre", "british-library", "19th-century", kind.name],
        eval_results=eval_results(metrics),
        widget=[{"text": t} for t in WIDGET_TITLES],
    )
    return from_template(ModelCard, data, "model_card.md.j2",
                         **card_context(name, meta, metrics, repo_id, folder))


def snippet_from_card(text: str) -> str:
    """The Python code of a card's *How to use* section."""
    match = re.search(r"## How to use\s+```python\n(.*?)```", text, re.S)
    if not match:
        raise ValueError("card has no usage snippet")
    return match.group(1)


# --------------------------------------------------------------------------- dataset card
def data_context(facts: dict) -> dict:
    """What ``dataset_card.md.j2`` and ``datasheet.md.j2`` are filled with."""
    return {"f": facts, "iso_639": ISO_639, "dataset_id": DATASET_ID,
            "dataset_config": DATASET_CONFIG, "dataset_name": DATASET_NAME, "doi": BL_DOI,
            "version": __version__}


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
    return from_template(DatasetCard, data, "dataset_card.md.j2", **data_context(f))


def datasheet(facts: dict | None = None) -> str:
    """A datasheet (Gebru et al. 2021) for the data as the book uses it, in Markdown."""
    return templating.render("datasheet.md.j2", **data_context(facts or data_facts()))


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
