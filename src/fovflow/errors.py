"""Errors a user can cause, each with a message that says what to do.

Everything a user can get wrong (a path, a file, an index, a parameter) raises a subclass of
`FovflowError`; the CLI prints its message in one line and exits with status 2. Any other
exception is a bug in fovflow and keeps its traceback.
"""

from __future__ import annotations


class FovflowError(Exception):
    """Base of every error a user can cause and fix."""


class InputFileError(FovflowError):
    """The input microscopy file cannot be used."""


class MissingFileError(InputFileError, FileNotFoundError):
    """The path does not exist."""


class NotAFileError(InputFileError, IsADirectoryError):
    """The path is a folder (or another non-file) where a file was expected."""


class UnsupportedFormatError(InputFileError):
    """The file's format is not one fovflow reads, or its reader plugin is not installed."""


class EmptyFileError(InputFileError):
    """The file has zero bytes."""


class CorruptFileError(InputFileError):
    """The file is truncated or its contents do not match its format."""


class IndexOutOfRangeError(FovflowError, IndexError):
    """A FOV, channel or frame index outside what the file holds."""


class ConfigError(FovflowError, ValueError):
    """A parameter or configuration value is invalid."""


class Cancelled(Exception):  # noqa: N818 - reads as an event, like concurrent.futures.CancelledError
    """Raised from a progress callback to stop work cooperatively; not an error of the user."""


class TableError(FovflowError, ValueError):
    """A traces, sample or fitted table is missing a column, has a bad value, or a bad header."""


class PluginError(FovflowError):
    """A plugin (a file in a plugins folder or an entry point) does not define a valid model."""


def yaml_problem(exc: Exception) -> str:
    """One line: what is wrong in a YAML text and where (PyYAML's own message spans several)."""
    problem = getattr(exc, "problem", None) or type(exc).__name__
    mark = getattr(exc, "problem_mark", None)
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark else problem
