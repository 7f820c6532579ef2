"""Errors of the models package (independent of app; app.core wraps them in its own types)."""


class ModelFileError(Exception):
    """A weight file that is missing, damaged, not ours, or for another architecture.

    The message is one sentence meant for the user.
    """
