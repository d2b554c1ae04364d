"""A smaller transformer taught by the book's own: could it be what ``predict --fast`` runs?

Serves the chapter 'Inference at scale'. On a CPU without bfloat16 or 8-bit dot-product
instructions, the transformer's int8 ONNX file spends its time in matrix products, one set per
layer, so the one way left to go much faster is fewer layers. This module keeps some of the
fine-tuned transformer's layers (a *student*: same tokenizer, same width, the teacher's
embeddings and the chosen layers' weights as its start), teaches it the transformer's
probabilities for the unlabelled pool (:mod:`blgenre.weak.teacher`, from which every validation
and test book was removed) plus the gold training labels, and then asks the question ``--fast``
asks of every cheaper copy, on the **validation** split: are at least 99.5% of the labels kept
and at most 0.005 of macro-F1 lost (:func:`blgenre.models.onnx_export.verdict`)? It also times
both int8 ONNX files on the same titles.

Training takes minutes per pass over the pool on two cores, too long for a book build, so the
chapter shows a committed run (:data:`COMMITTED`), made by
``python -m blgenre.models.transformer_student --out benchmarks/transformer_student.json``.
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from blgenre import runinfo
from blgenre.paths import PROJECT_ROOT
from blgenre.seed import SEED, set_seed

#: The teacher's layers the student keeps (of six): every other one, from the first.
LAYERS = (0, 2, 4)
EPOCHS = 2
LEARNING_RATE = 1e-4
BATCH_SIZE = 64
#: Tokens per title while training (the pool's titles average about 32; the few longer ones
#: would only slow every batch they fall in). Prediction uses the model's own limit.
TRAIN_MAX_LENGTH = 64
#: Pool titles both int8 files are timed on.
SPEED_TITLES = 3000
COMMITTED = PROJECT_ROOT / "benchmarks" / "transformer_student.json"


def shrink(model, layers: tuple[int, ...] = LAYERS):
    """A copy of the :class:`~blgenre.models.transformer_model.TransformerModel` ``model``
    with only the encoder ``layers`` (in that order); every other weight is the teacher's."""
    from transformers import AutoModelForSequenceClassification

    from blgenre.models.transformer_model import TransformerModel

    config = copy.deepcopy(model.model.config)
    if not layers or max(layers) >= config.num_hidden_layers:
        raise ValueError(f"layers {layers} do not fit a model of {config.num_hidden_layers}")
    config.num_hidden_layers = len(layers)
    net = AutoModelForSequenceClassification.from_config(config)
    state = {}
    for key, value in model.model.state_dict().items():
        if ".encoder.layer." not in key:
            state[key] = value
            continue
        head, rest = key.split(".encoder.layer.")
        number, tail = rest.split(".", 1)
        if int(number) in layers:
            state[f"{head}.encoder.layer.{layers.index(int(number))}.{tail}"] = value
    net.load_state_dict(state, strict=True)
    meta = {**model.meta, "student_of_layers": list(layers)}
    return TransformerModel(net, model.tokenizer, meta, model.max_length, model.batch_size)


def _batches(ids: list[list[int]], size: int, pad_id: int, rng=None):
    """``(rows, input_ids, attention_mask)`` for batches of titles of similar length, in a
    shuffled order of batches when ``rng`` is given."""
    import torch

    order = np.argsort([len(x) for x in ids], kind="stable")
    chunks = [order[i:i + size] for i in range(0, len(order), size)]
    if rng is not None:
        rng.shuffle(chunks)
    for rows in chunks:
        width = max(len(ids[i]) for i in rows)
        x = np.full((len(rows), width), pad_id, dtype=np.int64)
        mask = np.zeros_like(x)
        for r, i in enumerate(rows):
            x[r, :len(ids[i])], mask[r, :len(ids[i])] = ids[i], 1
        yield rows, torch.from_numpy(x), torch.from_numpy(mask)


def distil(student, titles: list[str], targets: np.ndarray, valid: pd.DataFrame,
           epochs: int = EPOCHS, learning_rate: float = LEARNING_RATE,
           batch_size: int = BATCH_SIZE, seed: int = SEED) -> pd.DataFrame:
    """Train ``student`` in place on ``titles`` with soft ``targets`` (one row of label
    probabilities per title, in the model's label order): cross-entropy against them, AdamW,
    one-cycle linear schedule. After every epoch it is scored on ``valid``; the epoch with the
    best validation macro-F1 is kept. Returns one row per epoch."""
    import torch

    from blgenre.data.text import clean_titles
    from blgenre.evaluation.evaluate import macro_f1
    from blgenre.models.lifecycle import model_labels

    set_seed(seed)
    labels = np.asarray(model_labels(student.meta), dtype=object)
    ids = student.tokenizer(clean_titles(titles), truncation=True,
                            max_length=TRAIN_MAX_LENGTH)["input_ids"]
    net, target = student.model, torch.tensor(np.asarray(targets, dtype=np.float32))
    steps = epochs * -(-len(ids) // batch_size)
    optimiser = torch.optim.AdamW(net.parameters(), lr=learning_rate, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, learning_rate, total_steps=steps,
                                                   pct_start=0.1, anneal_strategy="linear")
    rng, rows, best = np.random.default_rng(seed), [], None
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(False)  # as in fine_tune: the CPU default is repeatable
    try:
        for epoch in range(1, epochs + 1):
            net.train()
            start, losses = time.perf_counter(), []
            for batch, x, mask in _batches(ids, batch_size, student.tokenizer.pad_token_id or 0,
                                           rng):
                logits = net(input_ids=x, attention_mask=mask).logits
                loss = -(target[batch] * torch.log_softmax(logits, -1)).sum(-1).mean()
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                schedule.step()
                losses.append(loss.item())
            net.eval()
            pred = labels[student.predict_proba(valid["title"].tolist()).argmax(axis=1)]
            f1 = macro_f1(valid["label"].to_numpy(), pred, list(labels))
            rows.append({"epoch": epoch, "train_loss": float(np.mean(losses)),
                         "valid_macro_f1": f1, "epoch_seconds": time.perf_counter() - start})
            if best is None or f1 > best[0]:
                best = (f1, copy.deepcopy(net.state_dict()))
    finally:
        torch.use_deterministic_algorithms(deterministic)
    net.load_state_dict(best[1])
    return pd.DataFrame(rows)


def soft_targets(labels: list[str], pool_prob: np.ndarray, gold: list[str]) -> np.ndarray:
    """Rows of label probabilities: the teacher's P(``labels[0]``) for pool titles, then
    one-hot rows for the gold training labels."""
    pool_prob = np.asarray(pool_prob, dtype=float)
    pool = np.stack([pool_prob, 1 - pool_prob], axis=1)
    gold_rows = np.array([[float(g == label) for label in labels] for g in gold]).reshape(-1, 2)
    return np.concatenate([pool, gold_rows])


def titles_per_second(model, titles: list[str], repeats: int = 2) -> float:
    """The best of ``repeats`` timed runs of ``model.predict_proba`` over ``titles``."""
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        model.predict_proba(titles)
        best = min(best, time.perf_counter() - start)
    return len(titles) / best


def measure(teacher, pool: pd.DataFrame, train: pd.DataFrame, valid: pd.DataFrame,
            layers: tuple[int, ...] = LAYERS, epochs: int = EPOCHS,
            speed_titles: int = SPEED_TITLES) -> dict:
    """Teach a student of ``layers`` (``pool``: ``title`` and the teacher's ``prob_fiction``;
    ``train``, ``valid``: gold ``title`` and ``label``), check it against ``teacher`` on
    ``valid`` as ``--fast`` would, export both to int8 ONNX and time them on pool titles.

    ``teacher`` is a saved :class:`~blgenre.models.transformer_model.TransformerModel`; its
    int8 file is exported (and checked) if it is not yet.
    """
    from blgenre.models.lifecycle import model_labels
    from blgenre.models.onnx_export import compare, ensure_onnx, export_transformer, verdict
    from blgenre.models.onnx_runtime import ONNX_FILES, OnnxTransformer

    labels = model_labels(teacher.meta)
    student = shrink(teacher, layers)
    titles = pool["title"].tolist() + train["title"].tolist()
    targets = soft_targets(labels, pool["prob_fiction"], train["label"].tolist())
    start = time.perf_counter()
    epochs_table = distil(student, titles, targets, valid, epochs)
    train_seconds = time.perf_counter() - start
    reference = teacher.predict_proba(valid["title"].tolist())[:, 0]
    timed = pool["title"].tolist()[:speed_titles]
    ensure_onnx(teacher.kind, teacher.folder)
    fast_teacher = OnnxTransformer.from_model(teacher, "int8")
    with tempfile.TemporaryDirectory(prefix="blgenre-student-") as tmp:
        folder = student.save(Path(tmp) / "student")
        export_transformer(student, folder, valid)
        fast_student = OnnxTransformer(folder / ONNX_FILES["int8"], student.tokenizer,
                                       student.meta, student.max_length, student.batch_size)
        checks = {name: verdict(compare(reference, m.predict_proba(valid["title"].tolist())[:, 0],
                                        valid["label"]), "int8")
                  for name, m in (("student", student), ("student int8", fast_student))}
        speed = {"teacher int8": titles_per_second(fast_teacher, timed),
                 "student int8": titles_per_second(fast_student, timed)}
    return {"layers": list(layers), "teacher_layers": teacher.model.config.num_hidden_layers,
            "epochs": epochs, "learning_rate": LEARNING_RATE, "pool_titles": len(pool),
            "gold_titles": len(train), "train_seconds": round(train_seconds, 1),
            "epochs_table": epochs_table.round(4).to_dict(orient="records"),
            "checks": checks, "speed_titles": len(timed),
            "titles_per_s": {k: round(v, 1) for k, v in speed.items()}}


def measure_book(**kwargs) -> dict:
    """:func:`measure` for the book's transformer, pool and split, with the run's provenance."""
    from blgenre import settings
    from blgenre.data import split
    from blgenre.models import ensure
    from blgenre.weak.teacher import teacher_labels

    teacher = ensure("transformer").model
    report = measure(teacher, teacher_labels(), split.part("train"), split.part("valid"),
                     **kwargs)
    return {**report, "mode": "workshop" if settings.workshop() else "full",
            "split_sha256": split.split_info()["split_sha256"],
            "hardware": runinfo.hardware(), "versions": runinfo.versions(),
            "commit": runinfo.commit()}


def committed(path: str | Path = COMMITTED) -> dict | None:
    """The committed :func:`measure_book` run, if present."""
    return runinfo.read_report(path)


def tables(record: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The student's epochs, and the teacher beside the student (validation check, speed)."""
    epochs = pd.DataFrame(record["epochs_table"]).set_index("epoch")
    rows = {"teacher int8": {"titles per second": record["titles_per_s"]["teacher int8"]}}
    for name, check in record["checks"].items():
        rows[name] = {"valid macro-F1": check["macro_f1"],
                      "macro-F1 lost": check["macro_f1_loss"],
                      "labels kept": check["label_agreement"],
                      "passes --fast's check": check["passed"]}
        rows[name]["titles per second"] = record["titles_per_s"].get(name)
        rows["teacher int8"].setdefault("valid macro-F1", check["macro_f1_original"])
    return epochs.round(4), pd.DataFrame(rows).T.round(4)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m blgenre.models.transformer_student",
        description="Teach a smaller transformer from the book's transformer and check whether "
        "predict --fast could use it (validation split; needs a built book's models).")
    parser.add_argument("--layers", default=",".join(map(str, LAYERS)),
                        help="teacher layers the student keeps (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--out", default=None, help="JSON file to write (default: print it)")
    args = parser.parse_args(argv)
    try:
        layers = tuple(int(x) for x in args.layers.split(","))
    except ValueError:
        parser.error(f"--layers: expected numbers separated by commas, got {args.layers!r}")
    runinfo.write_report(measure_book(layers=layers, epochs=args.epochs), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
