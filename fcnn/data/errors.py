"""The one error type data loading raises, so callers can report it without a traceback."""


class DataError(Exception):
    """A data set is missing, malformed or unreadable; the message names the file and the fix."""
