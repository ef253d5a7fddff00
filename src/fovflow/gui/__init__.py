"""The fovflow desktop window (PySide6): processing, visualization and analysis tabs.

Long work runs in worker threads (`fovflow.gui.workers`) that talk to the window only through Qt
signals. Nothing outside this package imports Qt.
"""

import os

# matplotlib's Qt canvas must use the same binding as the window, whatever else is installed.
os.environ.setdefault("QT_API", "pyside6")
