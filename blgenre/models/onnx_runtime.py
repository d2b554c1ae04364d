"""The transformer run by ONNX Runtime: the fast CPU path of ``blgenre predict --fast``.

Serves the chapters 'Inference at scale' (the benchmark's ``onnx-fp32`` and ``onnx-int8`` rows)
and 'Demo apps' (the same files run in the reader's browser). :class:`OnnxTransformer` offers
the transformer's ``predict_proba`` (same tokenizer, same length-sorted batches, see
:func:`blgenre.models.transformer_model.predict_batched`), so code that predicts with a model
needs no change. The files are those :mod:`blgenre.models.onnx_export` wrote and checked; their
sha256 is verified before a session opens them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from blgenre.errors import ModelError
from blgenre.integrity import verify_sha256

#: ONNX files inside a model folder, by precision (the layout Transformers.js and the Hub use).
ONNX_FILES = {"fp32": "onnx/model.onnx", "int8": "onnx/model_quantized.onnx"}


def current_meta(model) -> dict:
    """The model's ``model.json`` as it is on disk now (an export made after the model was
    loaded adds its record there), or the loaded meta for a model never saved."""
    from blgenre.models.lifecycle import read_meta

    folder = getattr(model, "folder", None)
    try:
        return read_meta(folder) if folder is not None else dict(getattr(model, "meta", {}))
    except ModelError:
        return dict(getattr(model, "meta", {}))


def onnx_record(meta: dict) -> dict:
    """The ``onnx`` entry of a ``model.json`` (empty if the model was never exported)."""
    record = meta.get("onnx")
    return record if isinstance(record, dict) else {}


def session(path: str | Path, threads: int | None = None):
    """An ONNX Runtime CPU session for ``path`` (``threads``: intra-op threads, default ORT's)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # no warnings about unused initialisers in saved outputs
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxTransformer:
    """A transformer's ONNX export in ONNX Runtime, with the transformer's prediction interface."""

    kind = "transformer"

    def __init__(self, path: str | Path, tokenizer, meta: dict, max_length: int,
                 batch_size: int = 64, variant_name: str = "onnx-int8",
                 threads: int | None = None):
        self.path = Path(path)
        self.threads = threads
        self._session = None
        self.tokenizer = tokenizer
        self.meta = {**meta, "variant": variant_name}
        self.max_length = max_length
        self.batch_size = batch_size
        self.variant_name = variant_name

    @property
    def session(self):
        """The ONNX Runtime session, opened on first use: a copy that ``--fast`` weighs but does
        not run (:mod:`blgenre.models.fast_choice`), or whose threads ``predict --streams`` sets
        before it predicts, never opens one for nothing."""
        if self._session is None:
            self._session = session(self.path, self.threads)
        return self._session

    @classmethod
    def from_model(cls, model, precision: str = "int8", threads: int | None = None):
        """The ONNX export (``fp32`` or ``int8``) of a loaded :class:`TransformerModel`."""
        folder = getattr(model, "folder", None)
        record = onnx_record(current_meta(model))
        name = ONNX_FILES.get(precision)
        if name is None:
            raise ValueError(f"unknown precision {precision!r}; expected one of {list(ONNX_FILES)}")
        if folder is None or name not in record.get("files", {}):
            raise ModelError(f"this transformer has no ONNX export ({name}); run "
                             "blgenre.models.onnx_export.export_onnx('transformer') first")
        verify_sha256(Path(folder) / name, record["files"][name])
        return cls(Path(folder) / name, model.tokenizer, model.meta, model.max_length,
                   model.batch_size, f"onnx-{precision}", threads)

    def predict_proba(self, titles: list[str], batch_size: int | None = None,
                      sort: bool = True) -> np.ndarray:
        """Probabilities ``[Fiction, Non-fiction]`` per title, in input order."""
        from blgenre.models.transformer_model import predict_batched

        inputs = {i.name for i in self.session.get_inputs()}

        def run(batch: dict[str, np.ndarray]) -> np.ndarray:
            feed = {k: v for k, v in batch.items() if k in inputs}
            return self.session.run(["logits"], feed)[0]

        return predict_batched(self.tokenizer, titles, run, self.max_length,
                               batch_size or self.batch_size, sort)

    def set_threads(self, threads: int) -> None:
        """Use ``threads`` intra-op threads from now on (one per process when
        ``predict`` runs two processes: :mod:`blgenre.models.predict_streams`)."""
        self.threads, self._session = threads, None

    def fast(self) -> OnnxTransformer:
        return self

    def state_bytes(self) -> int:
        """Size of the ONNX file (weights and graph)."""
        return self.path.stat().st_size

    def save(self, *args, **kwargs):
        raise ValueError("only the plain (float32) model is saved; ONNX files are exported from it")


def fast_variant(model) -> OnnxTransformer | None:
    """ONNX Runtime int8 if the export passed its checks, else float32 if that did; else None.

    The checks (:mod:`blgenre.models.onnx_export`) are run on the validation split when the
    model is exported (never the test split, which is only reported): int8 passes if it keeps
    the labels of at least 99.5% of the titles and loses at most 0.005 macro-F1.
    """
    from blgenre.models.onnx_export import is_current

    meta = current_meta(model)
    if getattr(model, "folder", None) is None or "kind" not in meta or not is_current(meta):
        return None
    record = onnx_record(meta)
    for precision in ("int8", "fp32"):
        if passed(record, precision):
            return OnnxTransformer.from_model(model, precision)
    return None


def passed(record: dict, precision: str) -> bool:
    """Whether an ONNX record's ``precision`` file passed its check on validation and is listed
    (with its sha256) among the model's files, so that it may stand in for the model."""
    return (bool(record.get("checks", {}).get(precision, {}).get("passed"))
            and ONNX_FILES[precision] in record.get("files", {}))
