"""``pcavs pose ...``: head-motion tracks (``extract``)."""

from __future__ import annotations

import argparse
import sys
import time


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Register ``pcavs pose`` and its actions on ``parser``."""
    actions = parser.add_subparsers(dest="pose_action", required=True, metavar="ACTION")
    p = actions.add_parser(
        "extract", help="video -> pose track (.npz) [+ the aligned crops the pose encoder sees]",
        description="Track the face of a video, crop it the way `pcavs generate --pose VIDEO` does (the "
                    "official clip crop: roll, zoom, turn and nod kept, the mouth pinned) and write the "
                    "track: per frame the time, landmarks, crop matrix, head angles (yaw > 0: turned to "
                    "image left; pitch > 0: nodding down; roll > 0: clockwise in the image), detection "
                    "score, gap flag and shot index. Format: README, 'Pose tracks'.")
    p.add_argument("video", help="video with one face (any format PyAV reads)")
    p.add_argument("-o", "--output", required=True, help="track file to write (.npz)")
    p.add_argument("--crops", default=None, help="also write the aligned crops as a video (.mp4)")
    p.add_argument("--size", type=int, default=224, help="crop size in pixels (224: the official model)")
    p.add_argument("--fps", type=int, default=25, help="frame rate the video is read at (25: the model's)")
    p.add_argument("--max-gap", type=int, default=12, help="longest face-less run (frames) to interpolate")
    p.add_argument("--face-index", type=int, default=0, help="which face to follow (0 = largest)")
    p.set_defaults(pose_func=run_extract)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run the chosen ``pcavs pose`` action."""
    return int(args.pose_func(args))


def run_extract(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pcavs.infer.sources import InputError, check_input_file
    from pcavs.posetrack import extract_track

    check_input_file(args.video, "video")
    out = Path(args.output)
    if out.suffix != ".npz":
        raise InputError(f"{out}: a pose track is an .npz file; name it e.g. {out.with_suffix('.npz').name}")
    if not out.parent.is_dir():
        raise InputError(f"{out}: folder {out.parent} does not exist; create it or choose another -o")
    if args.size < 16:
        raise InputError(f"--size must be 16 or more, got {args.size}")
    t0 = time.perf_counter()
    track = extract_track(args.video, size=args.size, fps=args.fps, max_gap=args.max_gap,
                          face_index=args.face_index, crops=args.crops)
    track.save(out)
    yaw, pitch, roll = (track.angles[:, k] for k in range(3))
    print(f"wrote {out}: {len(track)} frames ({len(track) / track.fps:.2f} s), {int(track.shot.max()) + 1} "
          f"shot(s), {int(track.filled.sum())} filled; yaw {yaw.min():+.1f}..{yaw.max():+.1f}, pitch "
          f"{pitch.min():+.1f}..{pitch.max():+.1f}, roll {roll.min():+.1f}..{roll.max():+.1f} deg"
          + (f"; crops: {args.crops}" if args.crops else "") + f" ({time.perf_counter() - t0:.1f} s)",
          file=sys.stdout)
    return 0
