import subprocess
import sys

import pytest

_ALLOCATE_AND_FREE = """
import resource, sys
import numpy as np
from fovflow.execution.allocator import reuse_freed_buffers
tuned = reuse_freed_buffers() if sys.argv[1] == "tuned" else False
frames = [np.ones(4 * 1024**2, np.float32) for _ in range(3)]  # first touch, in both cases
del frames
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):  # a step's temporaries: three 2048x2048 float32 frames, 16 MiB each
    frames = [np.ones(4 * 1024**2, np.float32) for _ in range(3)]
    del frames
print(tuned, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _page_faults(mode: str) -> tuple[str, int]:
    done = subprocess.run([sys.executable, "-c", _ALLOCATE_AND_FREE, mode], capture_output=True,
                          text=True, check=True)
    tuned, faults = done.stdout.split()
    return tuned, int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc allocator only")
def test_freed_frame_buffers_are_reused_without_new_page_faults() -> None:
    tuned, faults_tuned = _page_faults("tuned")
    _, faults_default = _page_faults("default")
    assert tuned == "True"
    pages_per_frame = 16 * 1024**2 // 4096
    assert faults_default >= 4 * pages_per_frame  # the default gives memory back, then faults it in
    assert faults_tuned < pages_per_frame  # tuned: less than one frame's worth in 20 frames


_KEEP_THEN_RELEASE = """
import numpy as np
from fovflow.execution.allocator import release_freed_buffers, reuse_freed_buffers

def rss_mib():
    fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return int(fields["VmRSS"].split()[0]) / 1024

reuse_freed_buffers()
frames = [np.ones(4 * 1024**2, np.float32) for _ in range(4)]  # 64 MiB
del frames
kept = rss_mib()
release_freed_buffers()
print(kept - rss_mib())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc allocator only")
def test_buffers_kept_during_a_fov_are_given_back_after_it() -> None:
    done = subprocess.run([sys.executable, "-c", _KEEP_THEN_RELEASE], capture_output=True,
                          text=True, check=True)
    assert float(done.stdout) >= 48  # of the 64 MiB freed, most leaves the process
