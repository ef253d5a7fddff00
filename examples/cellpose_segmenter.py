"""A fovflow plugin that segments with Cellpose (https://www.cellpose.org), for those who have it.

Cellpose is not a dependency of fovflow; install it yourself (``pip install cellpose``), then::

    fovflow run MOVIE.ome.tif -o OUT --plugins examples --method cellpose

``--diameter auto`` (the default) lets Cellpose estimate the cell size; ``--diameter 30`` (px)
or ``--diameter 12um`` gives it. The model and the GPU are set in a run's YAML configuration::

    segmentation: {method: cellpose, model_type: nuclei, gpu: true}

Cellpose 3 runs ``model_type`` (``cyto3``, ``nuclei``, ``cyto2``, ...). Cellpose 4 has one
model, Cellpose-SAM, and ignores ``model_type``. Copy this file into your own plugins folder
to change it; every ``*.py`` file of a folder given with ``--plugins`` is loaded.

fovflow checks a run's settings by segmenting one blank 32x32 frame before anything runs, so
the model is loaded (and on first use downloaded) once in the main process, then once in each
worker process.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fovflow.errors import PluginError


def segment_cellpose(frame: NDArray[Any], *, diameter: float | None, model_type: str = "cyto3",
                     gpu: bool = False) -> NDArray[np.uint32]:
    """Segment one 2-D frame with Cellpose; `diameter` None lets Cellpose estimate it.

    Returns
    -------
    (Y, X) uint32 labels, 0 = background.
    """
    model, sam = _model(model_type, gpu)
    image = np.asarray(frame, np.float32)
    if sam:
        masks = model.eval(image, diameter=diameter)[0]
    else:  # channels: the grayscale image to segment, no nuclear channel
        masks = model.eval(image, diameter=diameter, channels=[0, 0])[0]
    return np.asarray(masks, np.uint32)


@functools.lru_cache(maxsize=4)
def _model(model_type: str, gpu: bool) -> tuple[Any, bool]:
    """The Cellpose model, loaded once per process, and whether it is Cellpose-SAM (4 on)."""
    try:
        from cellpose import models
    except ImportError as exc:
        raise PluginError("segmentation method 'cellpose' needs Cellpose: pip install cellpose "
                          f"({exc})") from exc
    if not hasattr(models, "Cellpose"):  # Cellpose 4 removed it (and its size model)
        return models.CellposeModel(gpu=gpu), True
    # Cellpose 3: the model with its size model, which estimates a diameter of None
    return models.Cellpose(gpu=gpu, model_type=model_type), False


SEGMENTERS = {"cellpose": segment_cellpose}
