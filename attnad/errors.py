"""Exceptions that mean "the user can fix this": the CLI turns them into one line and exit 2.

Anything else that escapes is our bug and gets a different exit code and a request for a report.
"""


class UserError(Exception):
    """A mistake in the input, config, options or model directory (exit code 2)."""


class ConfigError(UserError):
    """The YAML config or a --set override is invalid; the message names the key and file."""


class DataError(UserError):
    """An input file is missing, unreadable or does not match the trained schema."""


class ModelError(UserError):
    """A model directory is missing, tampered with or written by an incompatible version."""
