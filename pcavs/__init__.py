"""pcavs: pose-controllable audio-driven talking faces (PC-AVS) in pure PyTorch.

``from pcavs import TalkingFacePipeline, generate_video`` (loaded on first use: ``import pcavs`` stays
light for the command line).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["GenerationOptions", "GenerationResult", "TalkingFacePipeline", "generate_video", "__version__"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from pcavs.infer import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
