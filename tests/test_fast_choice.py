"""``predict --fast`` runs the copy that is fastest on this CPU, timed there once and recorded."""

from __future__ import annotations

import json
import time

import numpy as np

from blgenre.models import fast_choice


class Copy:
    """A stand-in copy of a model that takes ``delay`` seconds per title."""

    def __init__(self, name: str, delay: float):
        self.variant_name, self.delay = name, delay

    def predict_proba(self, titles):
        time.sleep(self.delay * len(titles))
        return np.zeros((len(titles), 2))


class Saved:
    """A stand-in saved model: a folder with a ``model.json``."""

    def __init__(self, folder, weights="abc"):
        self.folder = folder
        self.meta = {"kind": "transformer", "files": {"model.safetensors": weights},
                     "examples": ["A tale", "A history of Durham"]}
        (folder / "model.json").write_text(json.dumps(self.meta))


def makers(made: list[str], **delays):
    def maker(name):
        def make():
            made.append(name)
            return Copy(name, delays[name])
        return make
    return {name: maker(name) for name in delays}


def test_the_faster_copy_is_timed_once_then_read_from_model_json(tmp_path, monkeypatch):
    monkeypatch.setattr(fast_choice, "TIMING_TITLES", 40)
    model, made = Saved(tmp_path), []
    chosen = fast_choice.fastest(model, makers(made, bf16=2e-4, **{"onnx-int8": 1e-5}))
    assert chosen.variant_name == "onnx-int8" and sorted(made) == ["bf16", "onnx-int8"]
    record = json.loads((tmp_path / "model.json").read_text())[fast_choice.KEY]
    assert record["chosen"] == "onnx-int8" and record["cpu"] == fast_choice.cpu()
    assert record["titles_per_s"]["onnx-int8"] > record["titles_per_s"]["bf16"]
    assert fast_choice.recorded(model) == record
    made.clear()  # the second time nothing is timed: only the chosen copy is made
    chosen = fast_choice.fastest(model, makers(made, bf16=2e-4, **{"onnx-int8": 1e-5}))
    assert chosen.variant_name == "onnx-int8" and made == ["onnx-int8"]


def test_another_cpu_other_weights_or_candidates_time_again(tmp_path, monkeypatch):
    monkeypatch.setattr(fast_choice, "TIMING_TITLES", 40)
    model, made = Saved(tmp_path), []
    fast_choice.fastest(model, makers(made, bf16=1e-5, **{"onnx-int8": 2e-4}))
    meta = json.loads((tmp_path / "model.json").read_text())
    assert meta[fast_choice.KEY]["chosen"] == "bf16"
    meta[fast_choice.KEY]["cpu"] = {**fast_choice.cpu(), "model": "Another CPU"}
    (tmp_path / "model.json").write_text(json.dumps(meta))
    assert fast_choice.recorded(model) is None
    made.clear()  # on this CPU the ONNX file has become the faster: timed again, not trusted
    assert fast_choice.fastest(model, makers(made, bf16=2e-4, **{"onnx-int8": 1e-5})
                               ).variant_name == "onnx-int8"
    assert len(made) == 2
    made.clear()  # a student appeared: a new candidate set
    fast_choice.fastest(model, makers(made, bf16=2e-4, **{"onnx-int8-student": 1e-5}))
    assert len(made) == 2
    made.clear()  # retrained weights
    fast_choice.fastest(Saved(tmp_path, weights="new"),
                        makers(made, bf16=2e-4, **{"onnx-int8-student": 1e-5}))
    assert len(made) == 2


def test_one_candidate_is_not_timed(tmp_path):
    model, made = Saved(tmp_path), []
    assert fast_choice.fastest(model, makers(made, bf16=1.0)).variant_name == "bf16"
    assert fast_choice.KEY not in json.loads((tmp_path / "model.json").read_text())


def test_timing_titles_and_cpu():
    assert fast_choice.timing_titles({"examples": ["a", "b", "c"]}, 7) == list("abcabca")
    assert len(fast_choice.timing_titles({}, 10)) == 10  # older models: the built-in titles
    info = fast_choice.cpu()
    assert info["threads"] >= 1 and set(info["flags"]) <= set(fast_choice.FLAGS)


def test_records_are_written_whole_while_others_read(tmp_path):
    """A record added to ``model.json`` (a check, a timing) replaces the file in one step: a
    process loading the model at that moment never reads half a file."""
    import threading

    from blgenre.models.lifecycle import add_to_meta, read_meta

    Saved(tmp_path)
    stop, errors = threading.Event(), []

    def write():
        for i in range(300):
            add_to_meta(tmp_path, "padding", "x" * (i * 500))
        stop.set()

    writer = threading.Thread(target=write)
    writer.start()
    while not stop.is_set():
        try:
            read_meta(tmp_path)
        except Exception as exc:  # noqa: BLE001 - any failure to read is what this test catches
            errors.append(exc)
    writer.join()
    assert errors == [] and read_meta(tmp_path)["padding"] == "x" * 299 * 500
    assert [p.name for p in tmp_path.iterdir()] == ["model.json"]
