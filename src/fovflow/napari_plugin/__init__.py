"""napari plugin (npe2): open a fovflow run folder or one of its FOV folders in napari.

Declared in ``napari.yaml`` and the ``napari.manifest`` entry point; napari itself is the
optional extra ``fovflow[napari]``. Nothing here imports napari or Qt: the reader returns
napari's layer-data tuples.
"""
