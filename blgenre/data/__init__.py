"""Part I of the book: the data, from the British Library's CSV to the split every model uses.

Modules, in pipeline order: :mod:`~blgenre.data.loading` (find, check and clean the CSV; its
public names are re-exported here, so ``from blgenre import data; data.load_books()`` works),
:mod:`~blgenre.data.text` (title cleaning), :mod:`~blgenre.data.crowd` (the Zooniverse export),
:mod:`~blgenre.data.explore`, :mod:`~blgenre.data.audit` and :mod:`~blgenre.data.split`.
"""

from blgenre.data.loading import (  # noqa: F401
    ANNOTATED_FILE,
    ANNOTATION_COLUMNS,
    ANNOTATIONS_FILE,
    BL_DOI,
    BL_URL,
    FULL_FILE,
    HOW_TO_PROVIDE,
    KNOWN_SHA256,
    LABELS,
    REQUIRED_COLUMNS,
    LoadReport,
    cache_dir,
    clean,
    load_annotations,
    load_books,
    load_raw,
    locate,
    normalise_label,
    normalise_title,
    parse_year,
    primary_language,
    read_csv_checked,
    title_key,
)
