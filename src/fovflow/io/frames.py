"""(T, Y, X) stacks of frames in Zarr arrays, one frame a chunk, read and written frame by frame.

A stack is a whole (T, Y, X) array or one channel of a (T, C, Y, X) array (an OME-Zarr image
of several channels, `fovflow.io.ngff`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from numcodecs import BitRound, Blosc
from zarr.codecs import BloscCodec, BytesCodec
from zarr.storage import LocalStore

# Two Blosc settings, as Zarr records them and as `Frames` runs them (numcodecs), chosen by
# dtype (`frame_array_options`): camera counts (8- and 16-bit integers) are noise, which zstd
# with byte shuffle packs 3-37 % tighter than LZ4 (real recordings, benchmarks/RESULTS.md);
# labels (mostly zeros) and floats (rounded mantissas: zero bits) take LZ4 with bit shuffle,
# 2-3x faster to write at the same or a smaller size.
_COUNTS_CODEC = BloscCodec(cname="zstd", clevel=1, shuffle="shuffle")
_LZ4_CODEC = BloscCodec(cname="lz4", clevel=5, shuffle="bitshuffle")
_SHUFFLES = {"noshuffle": Blosc.NOSHUFFLE, "shuffle": Blosc.SHUFFLE, "bitshuffle": Blosc.BITSHUFFLE}


def _settings(codec: BloscCodec) -> tuple[str, int, str]:
    return codec.cname.value, codec.clevel, codec.shuffle.value


# Each codec as `Frames` runs it, by its settings.
_CODECS = {_settings(codec): Blosc(cname=codec.cname.value, clevel=codec.clevel,
                                   shuffle=_SHUFFLES[codec.shuffle.value])
           for codec in (_COUNTS_CODEC, _LZ4_CODEC)}


class Frames:
    """A (T, Y, X) Zarr array, or channel `channel` of a (T, C, Y, X) one, seen as a stack of
    frames: ``len()``, ``[t]`` and ``[t] = frame``.

    Zarr arrays have no ``len()``; the processing functions take any sequence of frames.

    For arrays in fovflow's own layout (a local folder, one frame per chunk, one of its codecs), a
    frame's chunk file is encoded or decoded here, with numcodecs' Blosc, and read or written
    directly: Zarr's synchronous API sends every chunk through its event-loop thread and a
    thread pool, which cost 9-21 % of the steps' time (benchmarks/RESULTS.md, Engine). The
    chunk files are byte-identical to Zarr's own (tests/io/test_store.py); any other array,
    index or missing chunk goes through Zarr.

    With `mantissa_bits`, float frames are rounded to that many bits of mantissa before they
    are stored (numcodecs' `BitRound`): still float32 for every reader, but the dropped bits
    are zeros, which the bit shuffle compresses away.
    """

    def __init__(self, array: zarr.Array, channel: int | None = None, *,
                 mantissa_bits: int | None = None) -> None:
        if (array.ndim == 4) != (channel is not None):
            raise ValueError(f"a channel is given for a (T, C, Y, X) array, and only for one; "
                             f"got channel {channel} of a {array.ndim}-D array")
        self.array = array
        self.channel = channel
        self._index: tuple[int, ...] = () if channel is None else (channel,)
        self._folder, self._blosc = _own_layout(array)
        self._frame_shape = tuple(array.shape[-2:])
        self._rounding = BitRound(mantissa_bits) if mantissa_bits is not None else None

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
                self._blosc.decode(encoded, out=frame)
                return frame
        return np.asarray(self.array[(t, *self._index)])

    def __setitem__(self, t: int, frame: np.ndarray) -> None:
        if self._rounding is not None:
            stored = np.ascontiguousarray(frame, self.array.dtype)
            frame = self._rounding.encode(stored).view(stored.dtype)
        chunk = self._chunk_file(t)
        if chunk is not None and np.shape(frame) == self._frame_shape and not self.array.read_only:
            chunk.parent.mkdir(parents=True, exist_ok=True)
            chunk.write_bytes(self._blosc.encode(np.ascontiguousarray(frame, self.array.dtype)))
        else:
            self.array[(t, *self._index)] = frame

    def downsampled(self, t: int, step: int) -> np.ndarray:
        """Frame `t` with every `step`-th row and column (for display: reads less than a frame
        only where chunks are smaller than one)."""
        return np.asarray(self.array[(t, *self._index, slice(None, None, step),
                                      slice(None, None, step))])

    def _chunk_file(self, t: int) -> Path | None:
        """Where frame `t` is stored, if this class may read and write it itself."""
        if self._folder is None or not isinstance(t, int | np.integer) or not 0 <= t < len(self):
            return None
        return self._folder / self.array.metadata.encode_chunk_key((int(t), *self._index, 0, 0))

    @property
    def shape(self) -> tuple[int, ...]:
        """(T, Y, X), also for a channel of a (T, C, Y, X) array."""
        return (int(self.array.shape[0]), *self._frame_shape)

    @property
    def dtype(self) -> np.dtype[Any]:
        return np.dtype(self.array.dtype)

    @property
    def attrs(self) -> Any:
        return self.array.attrs


def create_frames(path: Path, n_frames: int, shape: tuple[int, ...], dtype: Any) -> Frames:
    """A new (T, Y, X) Zarr array chunked one frame per chunk (napari and Dask open it).

    Blosc, zstd or LZ4 by dtype (`frame_array_options`). Every frame is written, even an empty
    one: Zarr's check for chunks equal to the fill value cost more than the compression (12.4
    vs 4.8 ms per 1024x1024 label frame), and a stack then has one chunk file per frame.
    """
    return Frames(zarr.create_array(store=path, **frame_array_options((n_frames, *shape), dtype)))


def frame_array_options(shape: tuple[int, ...], dtype: Any) -> dict[str, Any]:
    """What `create_frames` gives Zarr for an array of `shape` ((T, Y, X) or (T, C, Y, X)):
    one chunk per frame (and channel), every chunk written, Blosc zstd (level 1, byte shuffle)
    for 8- and 16-bit integers (camera frames) and LZ4 (bit shuffle) for the others."""
    dtype = np.dtype(dtype)
    counts = dtype.kind in "ui" and dtype.itemsize <= 2
    return {"shape": shape, "chunks": (*(1,) * (len(shape) - 2), *shape[-2:]), "dtype": dtype,
            "compressors": [_COUNTS_CODEC if counts else _LZ4_CODEC], "overwrite": True,
            "config": {"write_empty_chunks": True}}


def open_frames(path: Path) -> Frames:
    return Frames(zarr.open_array(path, mode="r"))


def _own_layout(array: zarr.Array) -> tuple[Path | None, Blosc | None]:
    """The array's folder and its codec, if it has fovflow's layout (see `Frames`)."""
    codecs = array.metadata.codecs if array.metadata.zarr_format == 3 else ()
    own = (isinstance(array.store, LocalStore) and sys.byteorder == "little"
           and array.ndim in (3, 4)
           and tuple(array.chunks) == (*(1,) * (array.ndim - 2), *array.shape[-2:])
           and len(codecs) == 2  # bytes in little-endian order (no order for 1-byte types)
           and codecs[0] in (BytesCodec(endian="little"), BytesCodec(endian=None))
           and isinstance(codecs[1], BloscCodec) and codecs[1].blocksize == 0)
    runs = _CODECS.get(_settings(codecs[1])) if own else None
    return (None, None) if runs is None else (Path(array.store.root) / array.path, runs)


