"""What a live stream puts out and how it keeps pace: frames with their time, the pacing rule, the figures."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np
import torch

from .sources import InputError

__all__ = ["LiveFrame", "LiveStats", "Pacing"]


@dataclass
class LiveFrame:
    """One output frame: shown at ``pts`` = ``index / fps`` seconds of the audio's timeline."""

    index: int
    pts: float
    image: np.ndarray  # (H, W, 3) uint8
    source_index: int  # the frame whose picture this is (< index when held)
    held: bool = False  # the previous picture repeated: this frame was dropped to keep pace
    latency: float | None = None  # seconds from the audio at ``pts`` being pushed to this frame's pull
    face: torch.Tensor | None = None  # (3, H, W) float in [-1, 1], when the stream keeps them


@dataclass(frozen=True)
class Pacing:
    """Drop (hold) frames that would come out more than ``max_delay`` s after they became computable."""

    max_delay: float = 0.08

    def __post_init__(self) -> None:
        if not self.max_delay >= 0:
            raise InputError(f"max_delay must be >= 0 seconds, got {self.max_delay!r}")


@dataclass
class LiveStats:
    """What the stream achieved: frames generated and held, frame rate and latency."""

    frames: int = 0
    generated: int = 0
    held: int = 0
    first_push: float | None = None
    last_pull: float | None = None
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=10000))
    lookahead_ms: float = 0.0

    @property
    def fps(self) -> float:
        """Generated frames per wall second (first audio push to the last frame out)."""
        if self.first_push is None or self.last_pull is None or self.last_pull <= self.first_push:
            return 0.0
        return self.generated / (self.last_pull - self.first_push)

    def latency_ms(self, q: float = 50) -> float:
        """Percentile ``q`` of the end-to-end latency of generated frames, in ms."""
        return float(np.percentile(np.asarray(self.latencies), q) * 1000) if self.latencies else float("nan")

    def summary(self) -> str:
        return (f"{self.frames} frames ({self.generated} generated, {self.held} held), {self.fps:.1f} frames/s, "
                f"latency median {self.latency_ms(50):.0f} ms, p95 {self.latency_ms(95):.0f} ms, "
                f"max {self.latency_ms(100):.0f} ms (algorithmic {self.lookahead_ms:.0f} ms)")
