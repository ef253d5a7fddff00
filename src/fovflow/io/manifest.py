"""The manifest (``processing_results.yaml``) that makes runs resumable, and output stamps.

The manifest is rewritten atomically (temporary file + rename) after every step; a step counts
as done only if the manifest records it with the current parameter hash *and* its outputs are
still what it wrote (size, and a sha256 for files).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from fovflow.errors import ConfigError, yaml_problem
from fovflow.io.fingerprint import input_fingerprint
from fovflow.io.layout import (
    LABELS_GROUP,
    MANIFEST_FORMAT,
    MANIFEST_NAME,
    PHASE,
    corrected_stack,
    fov_dir,
    raw_stack,
)
from fovflow.io.store import write_text_atomically

log = logging.getLogger(__name__)


def recorded_time_unit(output: Path) -> str | None:
    """The ``time_unit`` the run folder's manifest records, or None (no manifest or no key).

    Raises
    ------
    ConfigError
        If the manifest is not valid YAML or not a mapping.
    """
    path = output / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        return (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("time_unit")
    except (yaml.YAMLError, AttributeError) as exc:
        raise ConfigError(f"{path}: not a valid manifest: {exc}") from None


def stack_titles(output: Path, stacks: Sequence[str]) -> dict[str, str]:
    """What to call each of a FOV's image `stacks` (`fovflow.io.layout` names): the channel's
    name in the input file (``Phase``, ``GFP``, ``GFP, corrected`` for a background-corrected
    one) when the manifest records it, else the stack's name (a run folder of an older
    fovflow)."""
    path = Path(output) / MANIFEST_NAME
    try:
        manifest = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else {}
        names = list(manifest["input"]["channel_names"])
        segmented = int(manifest["channels"]["segment"])
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError):
        return {name: name for name in stacks}
    titles = {PHASE: names[segmented]} if 0 <= segmented < len(names) else {}
    for channel, name in enumerate(names):
        titles |= {raw_stack(channel): name, corrected_stack(channel): f"{name}, corrected"}
    return {stack: titles.get(stack, stack) for stack in stacks}


def output_stamp(path: Path) -> dict[str, Any]:
    """What a finished output is, to tell on resume whether it is still what the step wrote:
    a file's size, modification time and sha256; a folder's (Zarr) file count and bytes,
    leaving out the label images of an OME-Zarr image (another step's output, stamped apart)."""
    if path.is_dir():
        sizes = [entry.stat().st_size for entry in _files_under(path)
                 if Path(entry.path).relative_to(path).parts[0] != LABELS_GROUP]
        return {"files": len(sizes), "bytes": sum(sizes)}
    info = path.stat()
    return {"bytes": info.st_size, "modified_ns": info.st_mtime_ns, "sha256": _sha256(path)}


def _stamp_matches(path: Path, stamp: Mapping[str, Any] | None) -> bool:
    """Whether `path` is still the output `stamp` describes (only existence without a stamp,
    as recorded by fovflow before stamps). A file is hashed only if its time changed."""
    if stamp is None or not path.exists():
        return path.exists()
    if path.is_dir():
        return output_stamp(path) == dict(stamp)
    info = path.stat()
    if info.st_size != stamp.get("bytes"):
        return False
    return info.st_mtime_ns == stamp.get("modified_ns") or _sha256(path) == stamp.get("sha256")


def _files_under(folder: Path) -> Iterator[os.DirEntry[str]]:
    for entry in os.scandir(folder):
        if entry.is_dir(follow_symlinks=False):
            yield from _files_under(Path(entry.path))
        else:
            yield entry


def _sha256(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


class Manifest:
    """``processing_results.yaml``: what the run folder holds, FOV by FOV and step by step."""

    def __init__(self, output: Path, data: dict[str, Any]) -> None:
        self.output = output
        self.data = data

    @classmethod
    def open(cls, output: Path, *, input_path: Path, header: Mapping[str, Any],
             recorded: RecordedManifest | None = None) -> Manifest:
        """The folder's manifest, or a new one; refuses a folder that holds another input's run.

        `recorded` is the manifest as a check before the run read it: it is read again only if
        the file has changed since (another run wrote it between that check and this run's
        lock).
        """
        if recorded is None or recorded.version != manifest_version(output):
            recorded = RecordedManifest.read(output, input_path)
        data = recorded.data
        if data is None:
            return cls(output, {"format": MANIFEST_FORMAT, **header, "fovs": {}})
        if data["input"].get("path") != str(input_path):
            log.info("%s was moved to %s (same content): the run goes on with it",
                     data["input"].get("path"), input_path)
        data.update(header)
        return cls(output, data)

    def done_steps(self, fov: int, hashes: Mapping[str, str],
                   outputs: Mapping[str, Sequence[str]]) -> set[str]:
        """Steps of `fov` recorded with the current hash whose outputs are all still what the
        step wrote (see `output_stamp`); a changed or damaged output redoes its step."""
        record = self.data["fovs"].get(fov, {}).get("steps", {})
        folder = fov_dir(self.output, fov)
        done = set()
        for step, info in record.items():
            stamps = info.get("stamps") or {}
            if info.get("hash") == hashes.get(step) and all(
                    _stamp_matches(folder / name, stamps.get(name))
                    for name in outputs.get(step, ())):
                done.add(step)
        return done

    def record_step(self, fov: int, step: str, *, digest: str, seconds: float,
                    outputs: Sequence[str]) -> None:
        """Record a finished step with a stamp of each output (the caller reads them: on a
        cluster that is one stat per chunk file over the shared filesystem)."""
        entry = self.data["fovs"].setdefault(fov, {"status": "running", "steps": {}})
        folder = fov_dir(self.output, fov)
        entry["steps"][step] = {"hash": digest, "seconds": round(seconds, 3),
                                "outputs": list(outputs),
                                "stamps": {name: output_stamp(folder / name) for name in outputs}}
        self.write()

    def record_fov(self, fov: int, *, status: str, seconds: float = 0.0,
                   error: str | None = None) -> None:
        entry = self.data["fovs"].setdefault(fov, {"steps": {}})
        entry.update(status=status, seconds=round(seconds, 3))
        if error:
            entry["error"] = error
        else:
            entry.pop("error", None)
        self.write()

    def write(self) -> None:
        write_text_atomically(self.output / MANIFEST_NAME,
                              yaml.safe_dump(self.data, sort_keys=False, allow_unicode=True))


@dataclass(frozen=True)
class RecordedManifest:
    """A run folder's manifest as read once before a run, for the run to go on from."""

    data: dict[str, Any] | None  # None: the folder holds no manifest
    version: tuple[int, int, int] | None  # the file's inode, mtime and size when it was read

    @classmethod
    def read(cls, output: Path, input_path: Path) -> RecordedManifest:
        """`read_manifest`, with the version of the file it read.

        Raises
        ------
        ConfigError
            As `read_manifest`.
        """
        version = manifest_version(output)  # before reading: a newer file is read again
        return cls(read_manifest(output, input_path), version)


def manifest_version(output: Path) -> tuple[int, int, int] | None:
    """Which file the manifest in `output` is (None: there is none): it is replaced, never
    rewritten in place, so a new inode, time or size tells that it changed."""
    try:
        info = (output / MANIFEST_NAME).stat()
    except FileNotFoundError:
        return None
    return (info.st_ino, info.st_mtime_ns, info.st_size)


def read_manifest(output: Path, input_path: Path) -> dict[str, Any] | None:
    """The manifest in `output` (None if there is none), checked to be a run of `input_path`.

    Raises
    ------
    ConfigError
        If the manifest is damaged, not a fovflow manifest, or records another input.
    """
    path = output / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        problem = yaml_problem(exc) if isinstance(exc, yaml.YAMLError) else type(exc).__name__
        raise ConfigError(f"{path} is damaged ({problem}); move it away to start over, "
                          "or choose another output folder (-o)") from None
    recorded = data.get("input") if isinstance(data, dict) else None
    if not isinstance(recorded, dict) or "fovs" not in data:
        raise ConfigError(f"{path} is not a fovflow manifest; choose another output folder (-o)")
    if recorded.get("path") != str(input_path) and (
            recorded.get("fingerprint") != input_fingerprint(input_path)):
        raise ConfigError(f"{output} holds a run of {recorded.get('path')}, not {input_path}"
                          " (their contents differ); choose another output folder (-o)")
    return data


