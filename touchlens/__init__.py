"""touchlens: know, measure and improve every customer touchpoint.

``ws = touchlens.open("dir")`` opens a workspace; ``touchlens.init("dir")`` creates one.

The facade is imported on first use (PEP 562), so `import touchlens.cli` does not load the engine, the
statistics and the web stack before a command needs them: `touchlens --help` starts at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from touchlens.errors import MapError, Problem, TouchlensError, WorkspaceError

if TYPE_CHECKING:
    from touchlens.api import ImportReport, Workspace, init, open

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
_FACADE = ("ImportReport", "Workspace", "init", "open")


def __getattr__(name: str) -> Any:
    if name in _FACADE:
        from touchlens import api

        return getattr(api, name)
    raise AttributeError(f"module 'touchlens' has no attribute '{name}'")
