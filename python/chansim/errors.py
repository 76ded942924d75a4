"""Exceptions raised by chansim."""


class FormatError(ValueError):
    """A compressed file or message is truncated, corrupted, foreign or from a future version.

    Subclasses ValueError so callers that already catch ValueError for bad input keep working.
    """
