"""touchlens: know, measure and improve every customer touchpoint.

``ws = touchlens.open("dir")`` opens a workspace; ``touchlens.init("dir")`` creates one.
"""

from touchlens.api import ImportReport, Workspace, init, open
from touchlens.errors import MapError, Problem, TouchlensError, WorkspaceError

__version__ = "0.1.0"
__all__ = [
    "ImportReport",
    "MapError",
    "Problem",
    "TouchlensError",
    "Workspace",
    "WorkspaceError",
    "__version__",
    "init",
    "open",
]
