"""Inference: photo + speech (+ pose video) -> talking-face video. See :mod:`pcavs.infer.pipeline`."""

from __future__ import annotations

from typing import Any

__all__ = [
    "GenerationOptions",
    "GenerationResult",
    "InputError",
    "TalkingFacePipeline",
    "generate_video",
    "prepare_inputs",
]


def __getattr__(name: str) -> Any:
    # lazy: ``import pcavs.infer.cli`` (argument parsing) must not pay for torch and the face models
    if name in __all__:
        from . import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
