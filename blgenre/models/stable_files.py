"""Model files with the same bytes in every build: what skops, pickle and torch.save leave to chance.

Serves the reproducibility promise of the chapter 'Sharing data and keeping it safe'
(:mod:`blgenre.sharing.reproduce`). Two trainings of the baseline or the fastai model on one
split give the same weights, yet the files differed, for these reasons found by comparing them:

- ``skops.io.dump`` names each saved object by its memory address (``__id__`` in
  ``schema.json``, and the ``.npy`` file names) and stamps the zip entries with the time, and
  scikit-learn's TF-IDF keeps the address of its stop-word list;
- fastai pickles the learner's path, a temporary training folder, and the time its last
  epoch began;
- pickle writes a Python ``set`` in hash order, which changes from process to process (the
  stop words of the spaCy tokenizer inside fastai's model);
- ``torch.save`` adds a random number to ``.data/serialization_id``.

Each is undone without changing what loads: addresses are renumbered in order of appearance,
zip entries get a fixed time, the stop words are pickled sorted, and the random half of the serialization
id is set to zeros (its other half, a checksum of the contents, is kept).
"""

from __future__ import annotations

import functools
import gc
import re
import struct
import warnings
import zipfile
import zlib
from contextlib import contextmanager
from pathlib import Path

FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can hold
_SKOPS_REF = re.compile(r'("__id__": |"file": ")(\d+)')


def canonical_skops(path: str | Path) -> None:
    """Rewrite a skops file so that it depends only on the object saved, not on the process."""
    path = Path(path)
    with zipfile.ZipFile(path) as zf:
        entries = {info.filename: (zf.read(info.filename), info.compress_type)
                   for info in zf.infolist()}
    schema, schema_type = entries.pop("schema.json")
    numbers: dict[str, str] = {}

    def renumber(match: re.Match) -> str:
        return match.group(1) + numbers.setdefault(match.group(2), str(len(numbers) + 1))

    text = _SKOPS_REF.sub(renumber, schema.decode("utf-8"))
    renamed = {f"{numbers[name[:-4]]}.npy" if name.endswith(".npy") and name[:-4] in numbers
               else name: value for name, value in entries.items()}
    with zipfile.ZipFile(path, "w") as zf:
        for name in sorted(renamed):
            data, compress = renamed[name]
            zf.writestr(zipfile.ZipInfo(name, FIXED_TIME), data, compress_type=compress)
        zf.writestr(zipfile.ZipInfo("schema.json", FIXED_TIME), text.encode("utf-8"),
                    compress_type=schema_type)


class _SortedSet(set):
    """A set that pickles as its sorted items, and unpickles as a plain set."""

    def __reduce__(self):
        return set, (sorted(self),)


def forget_object_ids(estimator) -> None:
    """Drop what scikit-learn caches under an object's memory address before saving.

    ``TfidfVectorizer`` keeps ``id(stop_words)`` to skip re-checking its stop words; without
    it the check simply runs again at the next fit or transform.
    """
    parts = [estimator, *getattr(estimator, "get_params", lambda deep: {})(deep=True).values()]
    for part in parts:
        if "_stop_words_id" in getattr(part, "__dict__", {}):
            del part._stop_words_id


@contextmanager
def portable_learner(learn):
    """While this is open, a fastai learner holds nothing of the run that trained it.

    Its ``path`` and its data loaders' (a temporary training folder, which it would otherwise
    pickle as an absolute path) are ``.``; its recorder's ``start_epoch`` (the wall-clock time
    the last epoch began) is 0 and its ``log`` (the last epoch's printed row, with its duration)
    is empty. All are put back afterwards.
    """
    holders = [h for h in (learn, getattr(learn, "dls", None)) if hasattr(h, "path")]
    before = [h.path for h in holders]
    recorder = getattr(learn, "recorder", None)
    clock = {k: getattr(recorder, k) for k in ("start_epoch", "log") if hasattr(recorder, k)}
    for holder in holders:
        holder.path = Path(".")
    for key, value in clock.items():
        setattr(recorder, key, type(value)() if key == "log" else 0.0)
    try:
        yield
    finally:
        for holder, path in zip(holders, before, strict=True):
            holder.path = path
        for key, value in clock.items():
            setattr(recorder, key, value)


@contextmanager
def sorted_stop_words():
    """While this is open, spaCy's stop-word sets pickle in sorted order.

    fastai's tokenizer keeps a spaCy pipeline whose ``is_stop`` attribute getter holds the
    language's stop words in a ``set``; spaCy pickles it with its own pickler, in hash order,
    which Python changes from process to process. The set is swapped for an equal one that
    pickles sorted, and put back afterwards.
    """
    try:
        from spacy.language import Language
    except ImportError:
        yield
        return
    swapped = []
    with warnings.catch_warnings():  # some objects warn when isinstance looks at them
        warnings.simplefilter("ignore")
        pipelines = [o for o in gc.get_objects() if isinstance(o, Language)]
    for nlp in pipelines:
        for getter in nlp.vocab.lex_attr_getters.values():
            stops = getattr(getter, "keywords", {}).get("stops")
            if isinstance(getter, functools.partial) and type(stops) is set:
                getter.keywords["stops"] = _SortedSet(stops)
                swapped.append((getter, stops))
    try:
        yield
    finally:
        for getter, stops in swapped:
            getter.keywords["stops"] = stops


def fixed_serialization_id(path: str | Path) -> None:
    """Zero the random half of ``.data/serialization_id`` in a ``torch.save`` file, in place.

    The record is stored uncompressed, so its bytes are overwritten where they lie, and its
    CRC-32 updated in the local and the central zip headers; nothing else moves, so the
    alignment torch gives its tensors is kept.
    """
    path = Path(path)
    with zipfile.ZipFile(path) as zf:
        info = next((i for i in zf.infolist() if i.filename.endswith(".data/serialization_id")),
                    None)
        if info is None or info.compress_type != zipfile.ZIP_STORED:
            return
        old = zf.read(info)
    new = old[:20] + b"0" * (len(old) - 20)
    if new == old:
        return
    raw = bytearray(path.read_bytes())
    name_len, extra_len = struct.unpack_from("<HH", raw, info.header_offset + 26)
    start = info.header_offset + 30 + name_len + extra_len
    assert raw[start:start + len(old)] == old, "serialization id not where the header says"
    raw[start:start + len(old)] = new
    crc_old, crc_new = struct.pack("<I", info.CRC), struct.pack("<I", zlib.crc32(new))
    if info.flag_bits & 0x08:  # the CRC follows the data, in a data descriptor
        end = start + len(old)
        at = end + 4 if raw[end:end + 4] == b"PK\x07\x08" else end
    else:
        at = info.header_offset + 14
    assert raw[at:at + 4] == crc_old, "CRC-32 not where the zip format puts it"
    raw[at:at + 4] = crc_new
    name = info.filename.encode()
    pos = raw.find(b"PK\x01\x02", start)
    while pos != -1:  # this record's central directory entry: CRC at 16, name at 46
        size = struct.unpack_from("<H", raw, pos + 28)[0]
        if raw[pos + 46:pos + 46 + size] == name and raw[pos + 16:pos + 20] == crc_old:
            raw[pos + 16:pos + 20] = crc_new
            break
        pos = raw.find(b"PK\x01\x02", pos + 4)
    path.write_bytes(bytes(raw))
