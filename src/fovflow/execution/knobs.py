"""The settings of every executor, defined and checked once.

- `n_workers`: how many workers run items at once (processes, threads, or the processes of a
  local Dask cluster); by default every core this process may use. With a Dask scheduler it
  does not apply: the cluster's workers run the items, as many as it has at the moment.
- `max_in_flight`: how many items are handed out at once, to bound memory (each FOV in flight
  holds its frames); by default, and at most, `n_workers`. With a scheduler it caps the
  cluster's worker threads. (`batch_size`, ``--batch-size``: its old name.)
- `scheduler`: a Dask scheduler's address, ``tcp://host:8786``.

Messages name the command-line option beside the configuration key, since either may be what
the user typed.
"""

from __future__ import annotations

import logging
import numbers
import os
from typing import Any, NamedTuple

from fovflow.errors import ConfigError

log = logging.getLogger(__name__)


class Knob(NamedTuple):
    key: str  # in Python and configuration files
    option: str  # on the command line


WORKERS = Knob("n_workers", "--workers")
IN_FLIGHT = Knob("max_in_flight", "--max-in-flight")


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, e.g. under ``taskset`` or a batch
    system's allocation), else the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def checked_count(value: Any, knob: Knob) -> int | None:
    """`value` as a whole number of at least 1, or None (the default)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(f"{knob.key} must be a whole number, not {value!r} ({knob.option})")
    if value < 1:
        raise ConfigError(f"{knob.option} must be at least 1, not {value} ({knob.key})")
    return int(value)


def local_width(n_workers: Any, max_in_flight: Any) -> tuple[int, int]:
    """``(workers, in flight)`` of local workers: `n_workers` or every usable core, and
    `max_in_flight` but at most the workers."""
    workers = checked_count(n_workers, WORKERS) or usable_cores()
    in_flight = checked_count(max_in_flight, IN_FLIGHT) or workers
    return workers, min(workers, in_flight)


def checked_scheduler(address: Any) -> str | None:
    if address is None:
        return None
    if not isinstance(address, str):
        raise ConfigError(f"scheduler must be an address like tcp://host:8786, not {address!r}")
    if address.lower().startswith(("http://", "https://")):
        raise ConfigError(f"{address} is a web address (the Dask dashboard's); give the "
                          "scheduler's, like tcp://host:8786")
    return address


def warn_if_more_than_cores(n_workers: int) -> None:
    """Log when workers outnumber the cores: they take turns on them, and a run is slower
    than with one worker per core."""
    cores = usable_cores()
    if n_workers > cores:
        log.warning("--workers %d is more than the %d cores this process may use: the workers "
                    "take turns on them, which is slower than --workers %d", n_workers, cores,
                    cores)
