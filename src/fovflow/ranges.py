"""Index selections such as ``"0-3,5,9-12"``: parsing and formatting, with clear errors."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from fovflow.errors import ConfigError

MAX_INDEX = 99_999  # no microscope file holds more FOVs; bounds the work a typo can cause


def parse_ranges(text: str | int | Sequence[int | str], *, limit: int | None = None) -> list[int]:
    """Sorted unique indices from ``"1-4,6,9-20"``, a single int, or a list of ints/ranges.

    Ranges are inclusive. With `limit`, every index must be below it (e.g. the file's FOV
    count) and ``"all"`` selects ``range(limit)``.

    Raises
    ------
    ConfigError
        On an empty selection, a malformed part, a negative index, a reversed range, or an
        index at or above `limit`; the message quotes the offending part.
    """
    if isinstance(text, bool) or not isinstance(text, int | str | list | tuple):
        # e.g. None or 1.5 from a YAML file
        raise ConfigError(f"invalid index selection {text!r}; write e.g. '0-3,5'")
    if isinstance(text, int):
        parts: list[str] = [str(text)]
    elif isinstance(text, str):
        if text.strip().lower() == "all" and limit is not None:
            return list(range(limit))
        parts = text.split(",")
    else:
        parts = [str(item) for item in text]
    indices: set[int] = set()
    for part in parts:
        indices.update(_parse_part(part.strip(), text))
    if not indices:
        raise ConfigError(f"index selection {text!r} selects nothing; write e.g. '0-3,5'")
    if limit is not None and max(indices) >= limit:
        raise ConfigError(f"index {max(indices)} in {text!r} is out of range: "
                          f"there are {limit} (0 to {limit - 1})")
    return sorted(indices)


def format_ranges(indices: Iterable[int]) -> str:
    """The shortest ``"0-3,5"`` text for a set of indices (the inverse of `parse_ranges`)."""
    ordered = sorted(set(indices))
    runs: list[str] = []
    start = previous = None
    for index in ordered:
        if previous is not None and index == previous + 1:
            previous = index
            continue
        if start is not None:
            runs.append(_run(start, previous))
        start = previous = index
    if start is not None:
        runs.append(_run(start, previous))
    return ",".join(runs)


def _parse_part(part: str, whole: object) -> range:
    if not part:
        raise ConfigError(f"empty item in index selection {whole!r}; write e.g. '0-3,5'")
    if part.startswith("-"):
        raise ConfigError(f"negative index {part!r} in {whole!r}; indices start at 0")
    first, dash, last = part.partition("-")
    try:
        start = int(first)
        stop = int(last) if dash else start
    except ValueError:
        raise ConfigError(
            f"cannot read {part!r} in index selection {whole!r}; write e.g. '0-3,5'"
        ) from None
    if stop < start:
        raise ConfigError(f"reversed range {part!r} in {whole!r}; write it as {stop}-{start}")
    if stop > MAX_INDEX:
        raise ConfigError(f"index {stop} in {whole!r} is too large (at most {MAX_INDEX})")
    return range(start, stop + 1)


def _run(start: int, stop: int | None) -> str:
    return str(start) if stop == start else f"{start}-{stop}"
