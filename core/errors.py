"""User-facing errors.

Every error a user can cause or fix is a `DistillError`, so that the CLI can print
``error: <message>`` and exit 2 instead of showing a traceback. Messages are one line:
what is wrong, then (after a semicolon) how to fix it.
"""

from __future__ import annotations


class DistillError(Exception):
    """Base for every user-facing error; the message names the problem and the fix."""


class SummaryFormatError(DistillError):
    """A summary file is missing, corrupt, foreign or from a newer format version."""


class DivergenceWarning(UserWarning):
    """A run ended with finite but runaway values (e.g. pixels ~1e5): saved, but suspect."""
