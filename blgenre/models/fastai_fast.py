"""The fastai classifier's prediction without fastai's data loader, and its int8 variant.

Serves ``blgenre predict`` at collection scale (chapters 'Inference at scale' and 'Your own
collection'). Profiling the CLI on a catalogue showed where a fastai title's time went: about
40% in the AWD-LSTM, 30% in tokenising, and the rest in fastai's ``test_dl`` / ``get_preds``
machinery (a data loader that tokenises and sorts again, callbacks, progress bars). The
tokens are already known here, so they are numericalised with the learner's own vocabulary,
padded and fed to the network directly: the same numbers as ``get_preds`` (a test checks
this), in less time.

The padding follows fastai's ``pad_input_chunk`` for a title no longer than the classifier's
chunk (``bptt``, 72 tokens): pad tokens go *after* the title, where the forward-only LSTM has
already read it and the pooling masks them. So a short title's answer does not depend on
what else is in its batch. Longer titles (a handful in a catalogue) are read one at a time.

:func:`int8_network` is the ``--fast`` variant: the LSTM and linear layers with 8-bit integer
weights (PyTorch dynamic quantisation). It is used only if it passed :func:`int8_check` on
the validation split when the model was trained (at least ``MIN_INT8_AGREEMENT`` of the
labels kept and at most ``MAX_F1_LOSS`` of macro-F1 lost: the rule, and the constants, of the
transformer's ONNX int8 file, :func:`blgenre.models.onnx_export.verdict`).
"""

from __future__ import annotations

import copy
import warnings

import numpy as np

#: the key of ``model.json`` that records the int8 check
CHECK_KEY = "int8_check"


def vocab_index(learn) -> tuple[dict[str, int], int, int]:
    """Token -> id of the classifier's vocabulary, the id of unknown tokens and of padding."""
    vocab = list(learn.dls.vocab[0])
    stoi = {}
    for i, token in enumerate(vocab):
        stoi.setdefault(token, i)  # fastai's Numericalize keeps the first id of a repeated token
    return stoi, stoi.get("xxunk", 0), stoi.get("xxpad", 1)


def predict_tokens(network, tokens: list[list[str]], stoi: dict[str, int], unk: int, pad: int,
                   bptt: int, batch_size: int = 64) -> np.ndarray:
    """Softmax outputs of ``network`` (fastai's classifier module) for tokenised titles.

    Titles of at most ``bptt`` tokens are batched, longest first, and padded at the end;
    longer ones are read alone. Rows come back in input order, in the network's label order.
    """
    import torch

    ids = [[stoi.get(t, unk) for t in toks] for toks in tokens]
    lengths = np.array([len(x) for x in ids])
    order = np.argsort(-lengths, kind="stable")
    batches, start = [], 0
    while start < len(order):
        if lengths[order[start]] > bptt:
            batches.append(order[start:start + 1])
            start += 1
        else:
            batches.append(order[start:start + batch_size])
            start += batch_size
    out = None
    with torch.inference_mode():
        for idx in batches:
            x = torch.full((len(idx), max(int(lengths[idx].max()), 1)), pad, dtype=torch.long)
            for row, i in enumerate(idx):
                x[row, :lengths[i]] = torch.tensor(ids[i], dtype=torch.long)
            prob = torch.softmax(network(x)[0].float(), dim=-1).numpy()
            if out is None:
                out = np.empty((len(ids), prob.shape[1]))
            out[idx] = prob
    return out


def int8_network(network):
    """A copy of the classifier with int8 LSTM and linear weights (the training object is kept).

    fastai wraps each LSTM in ``WeightDropout``, which sets the LSTM's weights from a raw copy
    at every call; dynamic quantisation cannot see through that, so each LSTM is first
    unwrapped, holding its (evaluation-time, undropped) weights as ordinary parameters.
    """
    import torch
    from fastai.text.models.awdlstm import WeightDropout

    net = copy.deepcopy(network).eval()
    for module in net.modules():
        rnns = getattr(module, "rnns", None)
        if rnns is None:
            continue
        for i, rnn in enumerate(rnns):
            if isinstance(rnn, WeightDropout):
                inner = rnn.module
                for name in rnn.layer_names:
                    if name in inner._parameters:
                        del inner._parameters[name]
                    elif hasattr(inner, name):
                        delattr(inner, name)
                    raw = getattr(rnn, f"{name}_raw").detach().clone()
                    inner.register_parameter(name, torch.nn.Parameter(raw))
                inner.flatten_parameters()
                rnns[i] = inner
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization announces its move to torchao
        from torch.ao.quantization import quantize_dynamic

        return quantize_dynamic(net, {torch.nn.LSTM, torch.nn.Linear}, dtype=torch.qint8).eval()


def int8_check(model, valid, reference: np.ndarray | None = None) -> dict:
    """How the int8 variant of a :class:`~blgenre.models.fastai_model.FastaiModel` follows the
    model on the validation split (``valid``: ``title`` and ``label``), and whether it passed.
    ``reference``: the model's own probabilities for ``valid``, if already computed."""
    from blgenre.models.variant_checks import variant_check

    return variant_check(model, "int8", valid, reference)


def ensure_int8_check(folder, valid=None) -> dict:
    """The int8 check of the fastai model in ``folder``: the one in its ``model.json``, or, for
    a model saved before the check existed, run now (:func:`int8_check`, on ``valid``, by
    default the book's validation split) and added to its ``model.json``."""
    from blgenre.models.lifecycle import load_model, read_meta
    from blgenre.models.variant_checks import ensure_variant_check

    meta = read_meta(folder)
    if meta.get(CHECK_KEY):
        return meta[CHECK_KEY]
    return ensure_variant_check(load_model(folder), "int8", CHECK_KEY, valid, folder)


def speed_table(model, titles: list[str], repeats: int = 2):
    """Titles per second of the fastai model and its int8 variant through
    :func:`blgenre.models.predict.predict_titles` (as ``blgenre predict`` runs them), the best
    of ``repeats`` runs, with how far each variant's probabilities are from the model's."""
    import time

    import pandas as pd

    from blgenre.models.predict import predict_titles

    rows, reference = [], None
    for name in ("plain", "int8"):
        variant = model.variant(name)
        predict_titles(variant, titles[:64])  # warm up: first calls allocate
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            out = predict_titles(variant, titles)
            best = min(best, time.perf_counter() - start)
        prob = out.filter(like="prob_").to_numpy(float)
        reference = prob if reference is None else reference
        rows.append({"variant": name, "titles": len(titles),
                     "titles_per_s": round(len(titles) / best),
                     "max_prob_diff": float(np.abs(prob - reference).max())})
    return pd.DataFrame(rows).set_index("variant")
