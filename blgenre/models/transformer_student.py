"""A smaller transformer taught by the book's own: the fast path of ``predict --fast``.

Serves the chapter 'Inference at scale'. On a CPU without bfloat16 or 8-bit dot-product
instructions, the transformer's int8 ONNX file spends its time in matrix products, one set per
layer, so the one way left to go much faster is fewer layers. A *student* keeps some of the
fine-tuned transformer's layers (same tokenizer and width; the teacher's embeddings and the kept
layers' weights are its start) and learns the transformer's probabilities for the unlabelled pool
(:mod:`blgenre.weak.teacher`, from which every validation and test book was removed) plus the
gold training labels. Its int8 ONNX file is saved inside the transformer's folder
(:data:`STUDENT_FILE`) with a record in ``model.json`` (key ``student``), and ``--fast`` uses it
only if it passed the check every cheaper copy must pass, on the **validation** split: at least
99.5% of the teacher's labels kept, at most 0.005 of macro-F1 lost
(:func:`blgenre.models.onnx_export.verdict`). The test split is compared too, only to report.

Which layers to keep was chosen on validation by :mod:`blgenre.models.student_bench` (a
committed run; each setting takes minutes to teach).
"""

from __future__ import annotations

import copy
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from blgenre.seed import SEED, set_seed

#: The teacher's layers the student keeps (of six): every other one, from the first (two
#: layers lost labels on validation: ``benchmarks/transformer_student.json``).
LAYERS = (0, 2, 4)
#: Passes over the pool and the gold titles (a second pass scored lower on validation).
EPOCHS = 1
LEARNING_RATE = 1e-4
BATCH_SIZE = 64
#: Tokens per title while training (the pool's titles average about 32; the few longer ones
#: would only slow every batch they fall in). Prediction uses the model's own limit.
TRAIN_MAX_LENGTH = 64
#: The student's int8 ONNX file inside the transformer's folder, and its ``model.json`` key.
STUDENT_FILE = "onnx/student_quantized.onnx"
RECORD_KEY = "student"
#: Bumped when how a student is made changes; an older record is made again (2: its int8
#: setting is the fastest that passes, :func:`blgenre.models.onnx_export.pick_quantisation`).
VERSION = 2


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
    return TransformerModel(net, model.tokenizer, dict(model.meta), model.max_length,
                            model.batch_size)


def _shuffled_batches(enc, size: int, pad_id: int, rng):
    """Training batches of titles of similar length (padded as for prediction,
    :func:`~blgenre.models.transformer_model.padded_batches`), in a shuffled order, as tensors."""
    import torch

    from blgenre.models.transformer_model import padded_batches

    order = np.argsort([len(x) for x in enc["input_ids"]], kind="stable")
    chunks = [order[i:i + size] for i in range(0, len(order), size)]
    rng.shuffle(chunks)
    for rows, batch in padded_batches(enc, chunks, pad_id):
        yield rows, {key: torch.from_numpy(arr) for key, arr in batch.items()}


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
    enc = student.tokenizer(clean_titles(titles), truncation=True, max_length=TRAIN_MAX_LENGTH)
    net, target = student.model, torch.tensor(np.asarray(targets, dtype=np.float32))
    steps = epochs * -(-len(titles) // batch_size)
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
            for idx, batch in _shuffled_batches(enc, batch_size,
                                                student.tokenizer.pad_token_id or 0, rng):
                logits = net(**batch).logits
                loss = -(target[idx] * torch.log_softmax(logits, -1)).sum(-1).mean()
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


class Taught(NamedTuple):
    """What :func:`teach` made: the student's int8 file in ONNX Runtime, its epochs table, the
    seconds teaching took and how its int8 setting was chosen."""

    fast: object
    table: pd.DataFrame
    seconds: float
    quantisation: dict


def teach(teacher, pool: pd.DataFrame, train: pd.DataFrame, valid: pd.DataFrame, out: Path,
          layers: tuple[int, ...] | None = None, epochs: int | None = None):
    """Teach a student of ``layers`` (``pool``: ``title`` and the teacher's ``prob_fiction``;
    ``train``, ``valid``: gold ``title`` and ``label``) and write its int8 ONNX file to ``out``
    (the int8 setting chosen on ``valid``, as for the teacher's own file). ``layers`` and
    ``epochs`` default to :data:`LAYERS` and :data:`EPOCHS`.

    Returns a :class:`Taught` (its ``fast`` is the
    :class:`~blgenre.models.onnx_runtime.OnnxTransformer` reading ``out``).
    """
    import shutil

    from blgenre.models.lifecycle import model_labels
    from blgenre.models.onnx_export import export_transformer
    from blgenre.models.onnx_runtime import ONNX_FILES, OnnxTransformer

    student = shrink(teacher, LAYERS if layers is None else layers)
    titles = pool["title"].tolist() + train["title"].tolist()
    targets = soft_targets(model_labels(teacher.meta), pool["prob_fiction"],
                           train["label"].tolist())
    start = time.perf_counter()
    table = distil(student, titles, targets, valid, EPOCHS if epochs is None else epochs)
    seconds = time.perf_counter() - start
    with tempfile.TemporaryDirectory(prefix="blgenre-student-") as tmp:
        folder = Path(tmp)
        export_transformer(student, folder, valid)
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(folder / ONNX_FILES["int8"], out)
    fast = OnnxTransformer(out, teacher.tokenizer, teacher.meta, teacher.max_length,
                           teacher.batch_size, "onnx-int8-student")
    return Taught(fast, table, seconds, student.meta.pop("onnx_quantisation"))


def check_against(teacher, fast, part: pd.DataFrame) -> dict:
    """How the student ``fast`` follows ``teacher`` on ``part`` (``title``, ``label``):
    :func:`blgenre.models.onnx_export.compare`, the comparison of every cheaper copy."""
    from blgenre.models.onnx_export import compare

    titles = part["title"].tolist()
    return compare(teacher.predict_proba(titles)[:, 0], fast.predict_proba(titles)[:, 0],
                   part["label"])


def student_settings() -> dict:
    """What a student depends on besides its teacher's weights (compared by :func:`is_current`)."""
    return {"format": VERSION, "layers": list(LAYERS), "epochs": EPOCHS,
            "learning_rate": LEARNING_RATE, "train_max_length": TRAIN_MAX_LENGTH}


def is_current(meta: dict) -> bool:
    """Whether ``meta``'s student record was made from the teacher weights saved now, with
    this version's settings."""
    from blgenre.models import registry

    record = meta.get(RECORD_KEY)
    main = meta.get("files", {}).get(registry.get(meta.get("kind", "transformer")).main_file)
    return (isinstance(record, dict) and record.get("source_sha256") == main
            and all(record.get(k) == v for k, v in student_settings().items()))


def student_files(meta: dict) -> dict[str, str]:
    """The student's file (path inside the model folder -> sha256) to copy with a model, if
    current: a Hub copy then has the same ``--fast`` as the book's folder."""
    return {STUDENT_FILE: meta[RECORD_KEY]["sha256"]} if is_current(meta) else {}


def make_student(teacher, pool: pd.DataFrame, train: pd.DataFrame, valid: pd.DataFrame,
                 test: pd.DataFrame | None = None) -> dict:
    """Teach the saved ``teacher`` a student, save its int8 file in the teacher's folder and
    record it (with its check on ``valid``, which decides, and on ``test``, only reported)."""
    from blgenre.integrity import sha256_file
    from blgenre.models import registry
    from blgenre.models.lifecycle import add_to_meta, checked_meta
    from blgenre.models.onnx_export import verdict

    folder = Path(teacher.folder)
    meta = checked_meta(folder, teacher.kind)
    out = folder / STUDENT_FILE
    taught = teach(teacher, pool, train, valid, out)

    record = {**student_settings(), "teacher_layers": teacher.model.config.num_hidden_layers,
              "source_sha256": meta["files"][registry.get(teacher.kind).main_file],
              "pool_titles": len(pool), "gold_titles": len(train), "file": STUDENT_FILE,
              "sha256": sha256_file(out), "bytes": out.stat().st_size,
              "epochs_table": taught.table.round(4).to_dict(orient="records"),
              "quantisation": taught.quantisation,
              "check": verdict(check_against(teacher, taught.fast, valid), "int8"),
              "test_check": (check_against(teacher, taught.fast, test) if test is not None
                             else None),
              "seconds": round(taught.seconds, 1)}
    add_to_meta(folder, RECORD_KEY, record)
    return record


def intact_record(folder: str | Path, meta: dict) -> dict | None:
    """The student record of ``meta`` (the ``model.json`` of ``folder``) if it is current and
    its file in ``folder`` has the recorded sha256; else ``None``."""
    from blgenre.integrity import sha256_file

    path = Path(folder) / STUDENT_FILE
    if not is_current(meta) or not path.is_file():
        return None
    record = meta[RECORD_KEY]
    return record if sha256_file(path) == record["sha256"] else None


def ensure_student() -> dict:
    """The book's transformer's student record: reused if current and its file intact, else
    taught now from the pool's teacher labels and the book's split (minutes in full mode;
    in workshop mode the sampled pool and training titles of :mod:`blgenre.weak.teacher`).
    A reused student needs no model loaded, as for the teacher's cached labels."""
    from blgenre import settings
    from blgenre.data import split
    from blgenre.models.lifecycle import ensure, read_meta, reuse_verdict
    from blgenre.paths import model_dir
    from blgenre.weak.teacher import TEACHER, teacher_labels

    folder = model_dir(TEACHER)
    if reuse_verdict(TEACHER)[0]:  # the teacher stays: its student may too
        record = intact_record(folder, read_meta(folder))
        if record is not None:
            return record
    teacher = ensure(TEACHER).model  # (retrained if it was stale: its student went with it)
    return make_student(teacher, teacher_labels(), settings.sample_train(split.part("train")),
                        split.part("valid"), split.part("test"))


def student_variant(model):
    """The student's int8 file in ONNX Runtime, if the saved ``model`` has a current student
    that passed its validation check and whose file is intact; else ``None``."""
    from blgenre.models.onnx_runtime import OnnxTransformer, current_meta

    folder = getattr(model, "folder", None)
    record = intact_record(folder, current_meta(model)) if folder is not None else None
    if record is None or not record["check"].get("passed"):
        return None
    return OnnxTransformer(Path(folder) / STUDENT_FILE, model.tokenizer, model.meta,
                           model.max_length, model.batch_size, "onnx-int8-student")
