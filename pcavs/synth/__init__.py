"""SynthTalk: procedural talking heads with exact per-frame ground truth.

Compose any identity (look), pose track (head motion) and audio (lips) into the
exact target video of a cross-reenactment::

    from pcavs.synth import sample_identity, sample_pose, speech_clip, render
    audio, _ = speech_clip(seed=3, seconds=2.0)
    frames, gt = render(sample_identity(1), sample_pose(2, 50), audio, size=128)
"""

from .face_model import FaceIdentity, sample_background, sample_identity
from .motion import LIMITS, PoseTrack, sample_pose
from .render import Rendered, Renderer, render, render_iter, rotation_matrix
from .speech import (
    MouthTrack,
    SpeechEngineMissing,
    Voice,
    blink_track,
    mouth_track,
    random_sentence,
    read_wav,
    speech_clip,
    synthesize,
)

__all__ = [
    "LIMITS",
    "FaceIdentity",
    "MouthTrack",
    "PoseTrack",
    "Rendered",
    "Renderer",
    "SpeechEngineMissing",
    "Voice",
    "blink_track",
    "mouth_track",
    "random_sentence",
    "read_wav",
    "render",
    "render_iter",
    "rotation_matrix",
    "sample_background",
    "sample_identity",
    "sample_pose",
    "speech_clip",
    "synthesize",
]
