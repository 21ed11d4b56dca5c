"""Head-motion tracks: what the pose encoder sees, extracted from a video into a documented file.

``pcavs pose extract VIDEO -o track.npz`` writes a :class:`PoseTrack` (format below, in
:mod:`pcavs.posetrack.file`); ``--crops`` also writes the aligned crops the pose encoder reads.
"""

from .codes import DEFAULT_LOOP, LOOP_MODES, TrackCodes, apply_code_edits, track_codes
from .edit import TrackEdit, concat_tracks, edit_track
from .extract import add_codes, extract_track
from .file import TRACK_FORMAT, TRACK_VERSION, PoseTrack, TrackFileError, encoder_hash, load_track

__all__ = ["DEFAULT_LOOP", "LOOP_MODES", "TRACK_FORMAT", "TRACK_VERSION", "PoseTrack", "TrackCodes", "TrackEdit",
           "TrackFileError", "add_codes", "apply_code_edits", "concat_tracks", "edit_track", "encoder_hash",
           "extract_track", "load_track", "track_codes"]
