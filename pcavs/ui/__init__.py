"""Local web UI (Gradio): ``pcavs ui`` serves a page that turns a photo + speech (+ a pose video) into a video.

Importing this package is cheap; :mod:`pcavs.ui.app` (the page, which imports gradio and torch) is loaded
on first use. :mod:`pcavs.ui.backend` does the work behind the Video tab (model, preview, generation),
:mod:`pcavs.ui.preview` draws the face preview and :mod:`pcavs.ui.live` is the Live tab. Gradio's
telemetry and update check are switched off here, before gradio is ever imported, so the app never
contacts the internet.
"""

from __future__ import annotations

import os
from typing import Any

# gradio reads these when it is imported / when a Blocks is created: no analytics, no version check
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

__all__ = ["build_app"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
