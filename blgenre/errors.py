"""Errors the book raises on purpose, each with a message meant for a reader, not a developer."""


class BLGenreError(Exception):
    """Base class: the CLI prints these as one line and exits with status 2."""


class DataError(BLGenreError):
    """A data file is missing, empty, malformed or lacks what the book needs."""


class DataUnavailableError(DataError):
    """No local copy of the data and no way to download it."""


class ModelError(BLGenreError):
    """A model folder is missing, incomplete or fails its integrity check."""


class InputError(BLGenreError):
    """Input given to ``predict`` (a file of titles) cannot be used."""
