"""User-facing error classes.

Every error a user can cause (bad path, bad option, corrupt file, wrong model folder) is one of these. The CLI prints
the message on one line and exits with status 2; library callers can catch `AppError` (a `ValueError`).
Messages say what was given, what was expected, and how to fix it.
"""


class AppError(ValueError):
    """Base class of errors caused by user input (files, options, model folders)."""


class DataError(AppError):
    """An input data file is missing, unreadable, empty or malformed."""


class OptionError(AppError):
    """An option value is out of range or unknown."""


class ModelFolderError(AppError):
    """A model folder is missing a file, is damaged, or was written by another format version."""


class OutputError(AppError):
    """An output location cannot be written."""
