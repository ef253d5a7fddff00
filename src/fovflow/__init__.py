"""fovflow: single-cell time-lapse microscopy, from raw files to per-cell traces and kinetics."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("fovflow")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
