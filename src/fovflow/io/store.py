"""The run folder: per-FOV outputs written atomically, and the manifest that makes runs resumable.

::

    out/
      processing_results.yaml   manifest: input, config, time unit, per-FOV step status and hashes
      run_config.yaml           the configuration the run was started with
      run.log                   appended by every run
      run.lock                  only while a run writes here: who it is (pid, host, command)
      fov_000/  pc.zarr fl_ch_1.zarr seg.zarr fl_corrected_ch_1.zarr labels.zarr traces_ch_1.csv

Every output is written under ``<name>.partial`` and renamed when complete, so a file without
that suffix is always whole. The manifest is rewritten atomically (temporary file + rename)
after every step; a step counts as done only if the manifest records it with the current
parameter hash *and* its outputs are still what it wrote (size, and a sha256 for files).
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import fcntl
import hashlib
import logging
import os
import shutil
import socket
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml
import zarr
from numcodecs import Blosc
from zarr.codecs import BloscCodec, BytesCodec
from zarr.storage import LocalStore

from fovflow.errors import ConfigError, FovflowError, yaml_problem

log = logging.getLogger(__name__)

MANIFEST_NAME = "processing_results.yaml"
CONFIG_NAME = "run_config.yaml"
LOG_NAME = "run.log"
LOCK_NAME = "run.lock"
PARTIAL = ".partial"
FINGERPRINT_SPAN = 1 << 20  # bytes hashed at each end of an input file
MANIFEST_FORMAT = 1
_CNAME, _CLEVEL = "lz4", 5  # with bit shuffle
_CODEC = BloscCodec(cname=_CNAME, clevel=_CLEVEL, shuffle="bitshuffle")  # as Zarr records it
_BLOSC = Blosc(cname=_CNAME, clevel=_CLEVEL, shuffle=Blosc.BITSHUFFLE)  # what `Frames` runs


def fov_dir(output: Path, fov: int) -> Path:
    return output / f"fov_{fov:03d}"


@contextlib.contextmanager
def staged(folder: Path, names: Sequence[str]) -> Iterator[dict[str, Path]]:
    """Paths to write `names` under in `folder`; all renamed into place only on success.

    On any exception (including `Cancelled`) the partial outputs are removed and the
    previous complete outputs, if any, are left as they were.
    """
    folder.mkdir(parents=True, exist_ok=True)
    partial = {name: folder / (name + PARTIAL) for name in names}
    for path in partial.values():
        _remove(path)
    try:
        yield partial
    except BaseException:
        for path in partial.values():
            _remove(path)
        raise
    for name, path in partial.items():
        final = folder / name
        _remove(final)
        os.replace(path, final)


class Frames:
    """A (T, Y, X) Zarr array seen as a stack of frames: ``len()``, ``[t]`` and ``[t] = frame``.

    Zarr arrays have no ``len()``; the processing functions take any sequence of frames.

    For arrays in fovflow's own layout (a local folder, one frame per chunk, `_CODEC`), a
    frame's chunk file is encoded or decoded here, with numcodecs' Blosc, and read or written
    directly: Zarr's synchronous API sends every chunk through its event-loop thread and a
    thread pool, which cost 9-21 % of the steps' time (benchmarks/RESULTS.md, Engine). The
    chunk files are byte-identical to Zarr's own (tests/io/test_store.py); any other array,
    index or missing chunk goes through Zarr.
    """

    def __init__(self, array: zarr.Array) -> None:
        self.array = array
        self._folder = _own_layout_folder(array)
        self._frame_shape = tuple(array.shape[1:])

    def __len__(self) -> int:
        return int(self.array.shape[0])

    def __getitem__(self, t: int) -> np.ndarray:
        chunk = self._chunk_file(t)
        if chunk is not None:
            try:
                encoded = chunk.read_bytes()
            except FileNotFoundError:  # never written: Zarr returns the fill value
                pass
            else:
                frame = np.empty(self._frame_shape, self.array.dtype)
                _BLOSC.decode(encoded, out=frame)
                return frame
        return np.asarray(self.array[t])

    def __setitem__(self, t: int, frame: np.ndarray) -> None:
        chunk = self._chunk_file(t)
        if chunk is not None and np.shape(frame) == self._frame_shape and not self.array.read_only:
            chunk.parent.mkdir(parents=True, exist_ok=True)
            chunk.write_bytes(_BLOSC.encode(np.ascontiguousarray(frame, self.array.dtype)))
        else:
            self.array[t] = frame

    def _chunk_file(self, t: int) -> Path | None:
        """Where frame `t` is stored, if this class may read and write it itself."""
        if self._folder is None or not isinstance(t, int | np.integer) or not 0 <= t < len(self):
            return None
        return self._folder / self.array.metadata.encode_chunk_key((int(t), 0, 0))

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape)

    @property
    def dtype(self) -> np.dtype[Any]:
        return np.dtype(self.array.dtype)

    @property
    def attrs(self) -> Any:
        return self.array.attrs


def create_frames(path: Path, n_frames: int, shape: tuple[int, ...], dtype: Any) -> Frames:
    """A new (T, Y, X) Zarr array chunked one frame per chunk (napari and Dask open it).

    Blosc LZ4 with bit shuffle: 2-4x faster to write than Zarr's default zstd for microscopy
    frames at a similar size (labels and masks still compress to almost nothing); see
    benchmarks/RESULTS.md. Every frame is written, even an empty one: Zarr's check for chunks
    equal to the fill value cost more than the compression (12.4 vs 4.8 ms per 1024x1024
    label frame), and a stack then has one chunk file per frame.
    """
    return Frames(zarr.create_array(store=path, shape=(n_frames, *shape), chunks=(1, *shape),
                                    dtype=np.dtype(dtype), compressors=[_CODEC], overwrite=True,
                                    config={"write_empty_chunks": True}))


def open_frames(path: Path) -> Frames:
    return Frames(zarr.open_array(path, mode="r"))


def _own_layout_folder(array: zarr.Array) -> Path | None:
    """The array's folder if it has fovflow's layout (see `Frames`), else None."""
    codecs = array.metadata.codecs if array.metadata.zarr_format == 3 else ()
    own = (isinstance(array.store, LocalStore) and sys.byteorder == "little"
           and array.ndim == 3 and tuple(array.chunks) == (1, *array.shape[1:])
           and len(codecs) == 2  # bytes in little-endian order (no order for 1-byte types)
           and codecs[0] in (BytesCodec(endian="little"), BytesCodec(endian=None))
           and isinstance(codecs[1], BloscCodec)
           and (codecs[1].cname, codecs[1].clevel, codecs[1].shuffle, codecs[1].blocksize)
           == (_CODEC.cname, _CODEC.clevel, _CODEC.shuffle, 0))
    return Path(array.store.root) / array.path if own else None


def write_text_atomically(path: Path, text: str) -> None:
    """Write `path` whole or not at all: to ``<name>.partial`` first, then rename."""
    temporary = path.with_name(path.name + PARTIAL)
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    except BaseException:  # e.g. a full disk: no half-written file stays behind
        temporary.unlink(missing_ok=True)
        raise


def write_columns_csv(path: Path, columns: Mapping[str, np.ndarray]) -> None:
    """Equal-length columns as CSV, the same text as pandas' ``to_csv(index=False)``.

    NaN is an empty cell and a float has its shortest exact form. The csv module rather than
    pandas, so that worker processes do not import pandas (0.15 s each) for this alone.
    """
    texts = []
    for values in map(np.asarray, columns.values()):
        text = values.astype(str)
        if values.dtype.kind == "f":
            text[np.isnan(values)] = ""
        texts.append(text.tolist())
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(zip(*texts, strict=True))


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


def remove_partials(output: Path, fov: int | None = None) -> int:
    """Delete leftovers (``*.partial``) of an interrupted run or a dead worker.

    Only call this while nothing writes there (before a run, or for a FOV whose worker has
    ended). Returns how many were removed.
    """
    if not output.exists():
        return 0
    if fov is None:  # every FOV's, and the manifest's and saved config's temporaries
        leftovers = [*output.glob(f"fov_*/*{PARTIAL}"), *output.glob(f"*{PARTIAL}")]
    else:
        leftovers = list(fov_dir(output, fov).glob(f"*{PARTIAL}"))
    for path in leftovers:
        _remove(path)
    return len(leftovers)


def input_fingerprint(path: Path) -> str:
    """What identifies an input file's content wherever it lies: sha256 of its size and of its
    first and last `FINGERPRINT_SPAN` bytes (the whole file if it is smaller).

    Those ends hold the headers and metadata blocks of OME-TIFF, ND2 and CZI files (with the
    acquisition's UUIDs and time stamps), so a copy or a move keeps the fingerprint and
    another recording does not. O(1): two reads of 1 MiB.
    """
    digest = hashlib.sha256()
    with path.open("rb") as file:
        size = os.fstat(file.fileno()).st_size
        digest.update(str(size).encode())
        digest.update(file.read(FINGERPRINT_SPAN))
        if size > FINGERPRINT_SPAN:
            file.seek(max(FINGERPRINT_SPAN, size - FINGERPRINT_SPAN))
            digest.update(file.read(FINGERPRINT_SPAN))
    return digest.hexdigest()


@contextlib.contextmanager
def locked_run_folder(output: Path) -> Iterator[str | None]:
    """Hold ``run.lock`` in `output` while a run writes there; yields who held it last if that
    run died without releasing it (to be logged), else None.

    The lock is a `flock` held by this process, so the system releases it when the process
    dies however it dies: a lock file left by a dead run is simply taken over. The file names
    the run holding it, for the message a second run gets.

    Raises
    ------
    FovflowError
        If another run holds the folder.
    """
    path = output / LOCK_NAME
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 4096).decode("utf-8", "replace").strip() or "starting"
            os.close(fd)
            raise FovflowError(f"{output} is in use by another fovflow run ({holder}); wait "
                               "for it to end or choose another output folder (-o)") from None
        with contextlib.suppress(FileNotFoundError):
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                break  # not a file the run that held it removed while this one waited
        os.close(fd)
    try:
        stale = os.read(fd, 4096).decode("utf-8", "replace").strip()
        started = datetime.datetime.now().isoformat(timespec="seconds")
        holder = (f"pid {os.getpid()} on {socket.gethostname()} since {started}: "
                  f"{' '.join(sys.argv)[:200]}")
        os.ftruncate(fd, 0)
        os.pwrite(fd, holder.encode(), 0)
        yield stale or None
    finally:
        os.unlink(path)  # before unlocking: a run waiting on this file sees it is gone
        os.close(fd)


def output_stamp(path: Path) -> dict[str, Any]:
    """What a finished output is, to tell on resume whether it is still what the step wrote:
    a file's size, modification time and sha256; a folder's (Zarr) file count and bytes."""
    if path.is_dir():
        sizes = [entry.stat().st_size for entry in _files_under(path)]
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
    def open(cls, output: Path, *, input_path: Path, header: Mapping[str, Any]) -> Manifest:
        """The folder's manifest, or a new one; refuses a folder that holds another input's run."""
        data = read_manifest(output, input_path)
        if data is None:
            return cls(output, {"format": MANIFEST_FORMAT, **header, "fovs": {}})
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
    if recorded.get("path") != str(input_path):
        if recorded.get("fingerprint") != input_fingerprint(input_path):
            raise ConfigError(f"{output} holds a run of {recorded.get('path')}, not {input_path}"
                              " (their contents differ); choose another output folder (-o)")
        log.info("%s was moved to %s (same content): the run goes on with it",
                 recorded.get("path"), input_path)
    return data


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
