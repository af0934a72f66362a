"""The one exception type for bad input files."""

from __future__ import annotations

import os


class ImageError(ValueError):
    """A file could not be read or written as an image.

    The message is one line: ``<path>: <reason>``, fit to show to a user as is.
    """

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")
