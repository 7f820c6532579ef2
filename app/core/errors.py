"""Errors that carry one clear sentence for the user.

Everything the app expects to go wrong (a bad file, a label on another grid, a model file that is
not ours, a cancelled job) is raised as a SegLoopError; the GUI shows its text in a dialog and the
CLI prints it on one line. Anything else is a bug.
"""


class SegLoopError(Exception):
    """Base of every error whose message is meant for the user."""


class InputError(SegLoopError):
    """A file or folder that cannot be used as given."""


class UnsupportedFormatError(InputError):
    pass


class CorruptFileError(InputError):
    pass


class GridMismatchError(InputError):
    """A label whose size, spacing, origin or direction differs from its image."""


class ModelFileError(SegLoopError):
    """A weight file that is missing, damaged, foreign or for another architecture."""


class JobCancelled(SegLoopError):
    """A long job stopped because the user asked it to."""

    def __init__(self, message: str = "Cancelled by the user."):
        super().__init__(message)
