"""Channels that look swapped: what a run is told to do with a channel against its name.

A file records names such as ``Phase`` and ``GFP``; `--segment-channel 1 --fl 0` on it
segments the fluorescence as phase contrast and measures the transmitted light, and runs to
the end without complaint. `channel_role_warnings` says so before the run, from the names alone
(`fovflow.processing.suggest.method_from_name`); a name that says nothing gives no warning.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from fovflow.processing.suggest import method_from_name, suggest_channels

__all__ = ["channel_role_warning"]

_READS_AS = {"phase": "transmitted light (phase contrast, bright field, DIC)",
             "fluorescence": "a fluorescent marker"}
_SEGMENTS = {"phase": "phase contrast", "fluorescence": "a fluorescent marker"}


def channel_role_warning(channel_names: Sequence[str], *, segment_channel: int, method: str,
                         fl_channels: Sequence[int]) -> str | None:
    """A sentence on the channels whose names contradict their role in the run, or None.

    Warned about: the segmented channel's name reads as fluorescence and `method` is ``phase``
    (or it reads as transmitted light and `method` is ``fluorescence``); a measured channel's
    name reads as transmitted light. Plugin methods are not judged. The sentence ends with the
    file's channels and the options their names suggest.

    Notes
    -----
    O(channels).
    """
    named = [method_from_name(name) for name in channel_names]

    def label(channel: int) -> str:
        return f"{channel} ({channel_names[channel]!r})"

    problems = []
    if 0 <= segment_channel < len(named) and method in _SEGMENTS:
        reads_as = named[segment_channel]
        if reads_as is not None and reads_as != method:
            problems.append(f"the segmented channel {label(segment_channel)} reads as "
                            f"{_READS_AS[reads_as]}, but --method {method} segments "
                            f"{_SEGMENTS[method]}")
    measured_phase = [c for c in fl_channels if 0 <= c < len(named) and named[c] == "phase"]
    if measured_phase:
        one = len(measured_phase) == 1
        problems.append(f"the measured channel{'' if one else 's'} "
                        f"{', '.join(map(label, measured_phase))} read{'s' if one else ''} as "
                        f"{_READS_AS['phase']}, which has no fluorescence to measure")
    if not problems:
        return None
    listing = ", ".join(f"{i}: {name}" for i, name in enumerate(channel_names))
    segment, measured = suggest_channels([reads_as or "fluorescence" for reads_as in named],
                                         channel_names)
    options = shlex.join(["--segment-channel", str(segment), "--method",
                          named[segment] or method, "--fl", ",".join(map(str, measured))])
    return (f"are the channels swapped? {'; '.join(problems)}. The file's channels are "
            f"{listing}; their names suggest {options}")
