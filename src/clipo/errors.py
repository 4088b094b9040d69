"""The user-facing errors of the package: the ``clipo`` command prints each as one line and exits 2.

This module is the bottom layer (with ``clipo.records``): it imports nothing of the package, so every
part may raise these without reaching into another part.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A user-facing configuration error: names the key and the bad value."""


class SchemaError(ValueError):
    """A results or data file does not match its format; the message names file and column."""


class UserError(Exception):
    """Bad input found by a command handler (e.g. an unknown table name); printed as one line."""


class MissingInput(FileNotFoundError):
    """A figure's input files are absent or hold nothing it can plot; the message says what is missing."""
