"""ONNX exports of the book's models, each checked against the original on the validation split.

Serves the chapters 'Inference at scale' (ONNX Runtime as the fast CPU path) and 'Demo apps'
(the models running in the reader's browser). :func:`export_onnx` writes the files into the
model's folder (``onnx/model.onnx``, plus ``onnx/model_quantized.onnx`` with int8 weights for the
transformer: the layout the Hugging Face Hub and Transformers.js expect) and records them in
``model.json`` under ``onnx``: each file's sha256, the sha256 of the weights it was exported
from, and the checks. The checks compare the export with the original model on every title of
the validation split: float32 must give the same probabilities (at most :data:`MAX_FP32_DIFF`
apart); int8 must give the same label for at least :data:`MIN_INT8_AGREEMENT` of the titles and
lose at most :data:`MAX_F1_LOSS` macro-F1. A failed check is recorded, not hidden; ``--fast``
only uses an export that passed. Deciding that is a choice, so it is made on validation; the
same comparison on the test split is recorded beside it (``test_checks``) for the book to
report.

How each kind is exported is in its registry record (``Kind.onnx``): the transformer with
``torch.onnx.export`` (the TorchScript-based exporter, opset 17; the newer ``dynamo=True``
exporter gave wrong logits for this model), the baseline with ``skl2onnx`` where its TF-IDF
features convert (``char_wb`` n-grams do not), the fastai model not at all (see
:data:`NOT_EXPORTED`).
"""

from __future__ import annotations

import functools
import shutil
import time
import warnings
from pathlib import Path

import numpy as np

from blgenre.evaluation.evaluate import labels_from_proba, macro_f1
from blgenre.integrity import sha256_file
from blgenre.models import registry
from blgenre.models.lifecycle import add_to_meta, checked_meta
from blgenre.models.onnx_runtime import ONNX_FILES, onnx_record, session

OPSET = 17
MAX_FP32_DIFF = 1e-4
MIN_INT8_AGREEMENT = 0.995
MAX_F1_LOSS = 0.005
#: Bumped when what an export record holds, or how its int8 file is chosen, changes; an older
#: record is exported again.
RECORD_FORMAT = 3


# --------------------------------------------------------------------------- checks
def compare(reference: np.ndarray, prob: np.ndarray, true_labels) -> dict:
    """How closely ``prob`` (an export's P(Fiction)) follows ``reference`` (the original's)."""
    ref_pred, pred = labels_from_proba(reference), labels_from_proba(prob)
    f1_ref, f1 = macro_f1(true_labels, ref_pred), macro_f1(true_labels, pred)
    return {"n_titles": int(len(prob)),
            "max_prob_diff": float(np.abs(prob - reference).max()) if len(prob) else 0.0,
            "label_agreement": float((pred == ref_pred).mean()) if len(prob) else 1.0,
            "macro_f1": float(f1), "macro_f1_original": float(f1_ref),
            "macro_f1_loss": float(f1_ref - f1)}


def verdict(check: dict, precision: str) -> dict:
    """``check`` with ``passed`` set by the rule for ``precision`` (``fp32`` or ``int8``)."""
    if precision == "fp32":
        passed = check["max_prob_diff"] <= MAX_FP32_DIFF
    else:
        passed = (check["label_agreement"] >= MIN_INT8_AGREEMENT
                  and check["macro_f1_loss"] <= MAX_F1_LOSS)
    return {**check, "passed": bool(passed)}


def is_current(meta: dict) -> bool:
    """Whether ``meta``'s ONNX record was made from the weights the folder holds now, by this
    version of the export (:data:`RECORD_FORMAT`)."""
    record = onnx_record(meta)
    main = registry.get(meta["kind"]).main_file
    return (bool(record) and record.get("source_sha256") == meta.get("files", {}).get(main)
            and (not record.get("exported") or record.get("format") == RECORD_FORMAT))


# --------------------------------------------------------------------------- transformer
def export_transformer(model, folder: Path, valid) -> list[str]:
    """``onnx/model.onnx`` (float32) and ``onnx/model_quantized.onnx`` (int8) for ``model``."""
    import torch

    net = model.model.float().eval()
    enc = model.tokenizer(["A history of steam", "Poems"], padding=True, return_tensors="np")
    names = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]

    class Logits(torch.nn.Module):  # named inputs in, logits out: what ORT and the browser feed
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, *args):
            return self.net(**dict(zip(names, args, strict=True))).logits

    out = folder / "onnx"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    fp32, int8 = folder / ONNX_FILES["fp32"], folder / ONNX_FILES["int8"]
    args = tuple(torch.from_numpy(enc[k].astype(np.int64)) for k in names)
    axes = {k: {0: "batch", 1: "sequence"} for k in names} | {"logits": {0: "batch"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript tracer warnings about Python conditions
        # an eval-mode wrapper: export restores the wrapper's mode afterwards, recursively, and a
        # wrapper left in training mode would switch the model's dropout on for later predictions
        torch.onnx.export(Logits().eval(), args, str(fp32), input_names=names,
                          output_names=["logits"], dynamic_axes=axes, opset_version=OPSET,
                          dynamo=False)
    net.eval()
    model.meta["onnx_quantisation"] = choose_quantisation(fp32, int8, model, valid)
    return [ONNX_FILES["fp32"], ONNX_FILES["int8"]]


#: int8 settings tried (``quantize_dynamic`` keyword arguments, ``first_layer_float``: leave the
#: first encoder layer's matrix products in float32), in order of speed: the fully int8 ones
#: first. Keeping the first layer in float32 was added when the full book's model, quantised
#: throughout, flipped one validation title (and moved one probability by 0.78): the first
#: layer's activations are the least smooth, and they feed all the others. It costs speed (a
#: float layer takes about twice as long), so it is used only where the others fail the check.
QUANTISATIONS = {"per-channel": {"per_channel": True},
                 "per-tensor": {"per_channel": False},
                 "per-channel, first layer float": {"per_channel": True,
                                                    "first_layer_float": True}}


def first_layer_products(path: Path) -> list[str]:
    """Names of the matrix products of the first encoder layer of the ONNX graph at ``path``
    (BERT-style exports name them ``.../layer.0/...``)."""
    import re

    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return [n.name for n in graph.node
            if n.op_type in ("MatMul", "Gemm") and re.search(r"layer\.0/", n.name)]


def pick_quantisation(scores: dict[str, dict]) -> str:
    """The setting to keep, from each setting's :func:`compare` with float32 (in the order of
    :data:`QUANTISATIONS`, fastest first): the first that passes the int8 check
    (:func:`verdict`), i.e. the fastest file good enough to use; if none passes, the one that
    keeps the most labels (then moves probabilities least), so that a failed check is as
    near a pass as the settings allow."""
    for name, score in scores.items():
        if verdict(score, "int8")["passed"]:
            return name
    return max(scores, key=lambda n: (scores[n]["label_agreement"], -scores[n]["max_prob_diff"]))


def choose_quantisation(fp32: Path, int8: Path, model, valid) -> dict:
    """Quantise ``fp32`` to int8 in each of :data:`QUANTISATIONS`, compare each with float32 on
    the validation split and keep at ``int8`` the one :func:`pick_quantisation` picks. The test
    split is not looked at here."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from blgenre.models.onnx_runtime import OnnxTransformer

    titles = valid["title"].tolist()
    make = functools.partial(OnnxTransformer, tokenizer=model.tokenizer, meta=model.meta,
                             max_length=model.max_length, batch_size=model.batch_size)
    reference = make(fp32).predict_proba(titles)[:, 0]
    scores = {}
    for number, (name, options) in enumerate(QUANTISATIONS.items()):
        candidate = int8.with_name(f"candidate-{number}.onnx")
        options = dict(options)
        if options.pop("first_layer_float", False):
            options["nodes_to_exclude"] = first_layer_products(fp32)
        quantize_dynamic(str(fp32), str(candidate), weight_type=QuantType.QInt8, **options)
        scores[name] = verdict(compare(reference, make(candidate).predict_proba(titles)[:, 0],
                                       valid["label"]), "int8")
    chosen = pick_quantisation(scores)
    for number, name in enumerate(QUANTISATIONS):
        candidate = int8.with_name(f"candidate-{number}.onnx")
        if name == chosen:
            candidate.replace(int8)
        else:
            candidate.unlink()
    return {"chosen": chosen, "rule": "fastest that passes", "valid": scores}


def check_transformer(model, folder: Path, part) -> dict:
    """Both precisions against the PyTorch model on every title of ``part`` (a split)."""
    from blgenre.models.onnx_runtime import OnnxTransformer

    titles, truth = part["title"].tolist(), part["label"]
    reference = model.predict_proba(titles)[:, 0]
    checks = {}
    for precision in ("fp32", "int8"):
        ort_model = OnnxTransformer(folder / ONNX_FILES[precision], model.tokenizer, model.meta,
                                    model.max_length, model.batch_size, f"onnx-{precision}")
        checks[precision] = verdict(compare(reference, ort_model.predict_proba(titles)[:, 0],
                                            truth), precision)
    return checks


# --------------------------------------------------------------------------- baseline
def skl2onnx_obstacle(pipe) -> str | None:
    """Why ``skl2onnx`` cannot convert this TF-IDF pipeline exactly, or None if it may."""
    for name, vec in pipe.named_steps["features"].transformer_list:
        if vec.analyzer != "word":
            return (f"its '{name}' features are {vec.analyzer!r} n-grams, which skl2onnx does "
                    "not convert (only word n-grams)")
    return None


#: Python's ``\\b\\w\\w+\\b`` (scikit-learn's default tokens) in RE2 syntax, which ONNX Runtime's
#: tokenizer uses: runs of two or more Unicode letters, digits or underscores.
WORD_TOKENS = r"[\pL\pN_][\pL\pN_]+"


def export_baseline(model, folder: Path, valid=None) -> list[str]:
    """``onnx/model.onnx`` for a word-n-gram baseline (raises ``ValueError`` for other features)."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import StringTensorType
    from sklearn.feature_extraction.text import TfidfVectorizer

    obstacle = skl2onnx_obstacle(model.pipe)
    if obstacle:
        raise ValueError(obstacle)
    options = {TfidfVectorizer: {"tokenexp": WORD_TOKENS, "locale": "C.UTF-8"},
               id(model.pipe.named_steps["clf"]): {"zipmap": False}}
    onx = to_onnx(model.pipe, initial_types=[("title", StringTensorType([None, 1]))],
                  options=options, target_opset={"": OPSET, "ai.onnx.ml": 3})
    fix_sublinear_tf(onx)
    out = folder / "onnx"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    (folder / ONNX_FILES["fp32"]).write_bytes(onx.SerializeToString())
    return [ONNX_FILES["fp32"]]


def fix_sublinear_tf(onx) -> int:
    """Make ``sublinear_tf`` compute scikit-learn's ``1 + log(tf)`` (for tf > 0, else 0).

    skl2onnx 1.20.0 writes it as ``log(tf + 1)``, which changes the probabilities of every title
    that repeats a word. Each ``Log(Add(tf, ones))`` is rewritten in place; returns how many.
    """
    from onnx import helper, numpy_helper

    graph = onx.graph
    producers = {out: node for node in graph.node for out in node.output}
    inits = {init.name: init for init in graph.initializer}
    fixed = 0
    for log in [n for n in graph.node if n.op_type == "Log"]:
        add = producers.get(log.input[0])
        if add is None or add.op_type != "Add" or add.input[1] not in inits:
            continue
        ones = numpy_helper.to_array(inits[add.input[1]])
        if not np.all(ones == 1):
            continue
        tf, base = add.input[0], log.output[0]
        zero = f"{base}_zero"
        graph.initializer.append(numpy_helper.from_array(np.zeros(1, ones.dtype), zero))
        new = [helper.make_node("Log", [tf], [f"{base}_log"]),
               helper.make_node("Add", [f"{base}_log", add.input[1]], [f"{base}_plus1"]),
               helper.make_node("Greater", [tf, zero], [f"{base}_nonzero"]),
               helper.make_node("Where", [f"{base}_nonzero", f"{base}_plus1", zero], [base])]
        at = list(graph.node).index(log)
        graph.node.remove(log)
        for offset, node in enumerate(new):
            graph.node.insert(at + offset, node)
        fixed += 1
    return fixed


def baseline_onnx_proba(path: Path, titles: list[str]) -> np.ndarray:
    """P(Fiction) per title from a baseline's ONNX file (probabilities in ``classes_`` order)."""
    from blgenre.data import LABELS
    from blgenre.data.text import clean_titles

    sess = session(path)
    labels, probs = sess.run(None, {"title": np.array(clean_titles(titles), dtype=object)
                                    .reshape(-1, 1)})
    classes = sorted(LABELS)  # scikit-learn orders string classes alphabetically
    return probs[:, classes.index(LABELS[0])]


def check_baseline(model, folder: Path, part) -> dict:
    titles = part["title"].tolist()
    reference = model.predict_proba(titles)[:, 0]
    prob = baseline_onnx_proba(folder / ONNX_FILES["fp32"], titles)
    return {"fp32": verdict(compare(reference, prob, part["label"]), "fp32")}


# --------------------------------------------------------------------------- lifecycle
#: Why a kind has no ONNX export, for kinds whose registry record says so.
NOT_EXPORTED = {
    "fastai": ("fastai tokenises titles with spaCy and its own rules (xxmaj, xxup, ...) in "
               "Python: the AWD-LSTM's tensors could be exported, but not the steps that turn a "
               "title into its input, so it stays server-side"),
}
EXPORTERS = {"torch": (export_transformer, check_transformer),
             "skl2onnx": (export_baseline, check_baseline)}


def export_onnx(kind_name: str, folder: str | Path | None = None, test=None, valid=None) -> dict:
    """Export the saved ``kind_name`` model in ``folder``, check it, record it.

    ``valid`` (default: the validation split) is where the int8 settings are chosen and where
    the checks that decide whether ``--fast`` may use a file are made (``checks``); the same
    comparison on ``test`` (default: the test split) is reported beside them (``test_checks``),
    never used to choose. Returns the ``onnx`` record written to ``model.json``: ``exported``
    (bool), and either ``reason`` or ``files`` (path -> sha256), ``source_sha256``,
    ``checks``, ``test_checks`` and ``seconds``.
    """
    from blgenre.data import split
    from blgenre.paths import model_dir

    kind = registry.get(kind_name)
    folder = Path(folder) if folder else model_dir(kind_name)
    meta = checked_meta(folder, kind_name)
    source = meta["files"].get(kind.main_file)
    if kind.onnx not in EXPORTERS:
        record = {"exported": False, "source_sha256": source,
                  "reason": NOT_EXPORTED.get(kind_name, "no ONNX exporter for this kind")}
        add_to_meta(folder, "onnx", record)
        return record
    export, check = EXPORTERS[kind.onnx]
    model = kind.model_class().load(folder)
    test = split.part("test") if test is None else test
    valid = split.part("valid") if valid is None else valid
    start = time.perf_counter()
    try:
        files = export(model, folder, valid)
    except (ValueError, NotImplementedError) as exc:
        shutil.rmtree(folder / "onnx", ignore_errors=True)
        record = {"exported": False, "source_sha256": source, "reason": str(exc)}
        add_to_meta(folder, "onnx", record)
        return record
    seconds = time.perf_counter() - start
    record = {"exported": True, "format": RECORD_FORMAT, "exporter": kind.onnx, "opset": OPSET,
              "source_sha256": source, "quantisation": model.meta.pop("onnx_quantisation", None),
              "files": {name: sha256_file(folder / name) for name in files},
              "bytes": {name: (folder / name).stat().st_size for name in files},
              "checks": check(model, folder, valid), "test_checks": check(model, folder, test),
              "seconds": round(seconds, 2)}
    add_to_meta(folder, "onnx", record)
    return record


def ensure_onnx(kind_name: str, folder: str | Path | None = None) -> dict:
    """The model's ONNX record: reused if made from the weights saved now, else exported now."""
    from blgenre.paths import model_dir

    folder = Path(folder) if folder else model_dir(kind_name)
    meta = checked_meta(folder, kind_name)
    if is_current(meta):
        record = onnx_record(meta)
        if all((folder / name).is_file() and sha256_file(folder / name) == digest
               for name, digest in record.get("files", {}).items()):
            return record
    return export_onnx(kind_name, folder)


def export_files(meta: dict) -> dict[str, str]:
    """ONNX files (path inside the model folder -> sha256) to copy with a model, if current."""
    return dict(onnx_record(meta).get("files", {})) if is_current(meta) else {}


def summary_table(records: dict[str, dict]):
    """One row per kind and precision: exported or why not, and its agreement figures (on the
    validation split, which decides ``passed``; the test split's label agreement beside them)."""
    import pandas as pd

    rows = []
    for name, record in records.items():
        if not record.get("exported"):
            rows.append({"model": name, "precision": "-", "exported": False,
                         "note": record.get("reason", "")})
            continue
        for precision, check in record["checks"].items():
            rows.append({"model": name, "precision": precision, "exported": True,
                         "MB": record["bytes"][ONNX_FILES[precision]] / 1e6,
                         **{k: check[k] for k in ("max_prob_diff", "label_agreement",
                                                  "macro_f1", "macro_f1_loss", "passed")},
                         "test_label_agreement":
                             record["test_checks"][precision]["label_agreement"]})
    return pd.DataFrame(rows)
