"""Writing the run folder safely: outputs staged and renamed whole, text written atomically,
leftovers of an interrupted run removed, the run lock (the input's fingerprint is
`fovflow.io.fingerprint`'s).

Every output is written under ``<name>.partial`` and renamed when complete, so a file without
that suffix is always whole. Names are `fovflow.io.layout`'s; the manifest that records what
is done is `fovflow.io.manifest`.
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import fcntl
import os
import shutil
import socket
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fovflow.errors import FovflowError
from fovflow.io.layout import LOCK_NAME, PARTIAL, PARTIAL_PATTERNS, fov_dir, parquet_name

if TYPE_CHECKING:  # pandas is not imported by the workers (see `write_columns_csv`)
    import pandas as pd



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


def remove_outputs(folder: Path, names: Sequence[str]) -> None:
    """Delete the outputs `names` of `folder` that are there (e.g. one a step no longer
    writes, replaced by another)."""
    for name in names:
        _remove(folder / name)


def write_text_atomically(path: Path, text: str) -> bool:
    """Write `path` whole or not at all: to ``<name>.partial`` first, then rename.

    A file that already holds `text` is left alone, its time too (a rerun that changes
    nothing rewrites nothing); returns whether the file was written.
    """
    data = text.encode("utf-8")
    if _holds(path, data):
        return False
    temporary = path.with_name(path.name + PARTIAL)
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    except BaseException:  # e.g. a full disk: no half-written file stays behind
        temporary.unlink(missing_ok=True)
        raise
    return True


def _holds(path: Path, data: bytes) -> bool:
    try:
        return path.stat().st_size == len(data) and path.read_bytes() == data
    except OSError:  # no such file yet, or a folder
        return False


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


def write_columns_parquet(path: Path, columns: Mapping[str, np.ndarray]) -> None:
    """The same columns as `write_columns_csv`, as a Parquet table (needs pyarrow)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({name: np.asarray(values) for name, values in columns.items()}), path)


def rewrite_traces(path: Path, table: pd.DataFrame) -> None:
    """Replace the traces table `path` (CSV) by `table`, and its Parquet twin if the run wrote
    one (both atomically), so that the two never disagree (e.g. after quality marks)."""
    write_text_atomically(path, table.to_csv(index=False))
    twin = path.with_name(parquet_name(path.name))
    if twin.is_file():
        write_parquet_atomically(twin, table)


def write_parquet_twin(path: Path, table: pd.DataFrame, notes: Mapping[str, str], *,
                       csv_written: bool) -> None:
    """The Parquet twin of the CSV table `path` (same columns; `notes`, e.g. the CSV's header
    line, in the file's key-value metadata), written atomically when pyarrow is installed and
    the CSV was just written (or has no twin yet: a rerun that changes nothing rewrites
    nothing); without pyarrow an older twin is removed, so a twin never disagrees with its
    CSV."""
    from fovflow.io import layout  # read at call time: tests switch Parquet off

    twin = path.with_name(parquet_name(path.name))
    if not layout.WRITES_PARQUET:
        twin.unlink(missing_ok=True)
    elif csv_written or not twin.is_file():
        write_parquet_atomically(twin, table, notes)


def write_parquet_atomically(path: Path, table: pd.DataFrame,
                             notes: Mapping[str, str] | None = None) -> None:
    """`table` without its index as Parquet at `path`, whole or not at all."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrow = pa.Table.from_pandas(table, preserve_index=False)
    if notes:
        arrow = arrow.replace_schema_metadata({**(arrow.schema.metadata or {}),
                                               **dict(notes)})
    temporary = path.with_name(path.name + PARTIAL)
    try:
        pq.write_table(arrow, temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def remove_partials(output: Path, fov: int | None = None) -> int:
    """Delete leftovers (``*.partial``) of an interrupted run or a dead worker.

    Only call this while nothing writes there (before a run, or for a FOV whose worker has
    ended). Returns how many were removed.
    """
    if not output.exists():
        return 0
    folders = "fov_*" if fov is None else fov_dir(output, fov).name
    leftovers = [path for pattern in PARTIAL_PATTERNS
                 for path in output.glob(f"{folders}/{pattern}")]
    if fov is None:  # and the manifest's and saved config's temporaries
        leftovers += output.glob(f"*{PARTIAL}")
    for path in leftovers:
        _remove(path)
    return len(leftovers)


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


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
