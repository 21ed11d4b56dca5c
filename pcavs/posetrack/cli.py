"""``pcavs pose ...``: head-motion tracks (``extract``, ``check``, ``show``, ``edit``, ``export-csv``)."""

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
    p.add_argument("--weights", default=None,
                   help="also cache this model's pose codes in the track (then generate needs no video)")
    p.set_defaults(pose_func=run_extract)

    p = actions.add_parser(
        "check", help="preflight a pose video or track: gaps, weak detections, angles, cuts; exit 0 or 2",
        description="Check a pose video (tracked now) or a track file before a long job: frames without a face "
                    "(and the filled gaps), weak detections, head angles beyond what the model saw in "
                    "training, frame-rate changes and shot cuts. Exit 0 when usable, 2 when not.")
    p.add_argument("source", help="pose video, or a track file (.npz) from `pcavs pose extract`")
    p.add_argument("--model", choices=("small", "official"), default="small",
                   help="whose training range to check the angles against (small: the built-in model)")
    p.add_argument("--max-gap", type=int, default=12,
                   help="longest face-less run (frames) generation interpolates; a longer one is a problem")
    p.set_defaults(pose_func=run_check)

    p = actions.add_parser("show", help="track -> PNG: yaw/pitch/roll over time, gaps and cuts, and crops")
    p.add_argument("track", help="track file (.npz) or a pose video")
    p.add_argument("-o", "--output", required=True, help="PNG to write")
    p.add_argument("--no-crops", action="store_true", help="plot only (no contact sheet from the video)")
    p.set_defaults(pose_func=run_show)

    p = actions.add_parser(
        "edit", help="trim, retime, loop, smooth, scale, mirror or join tracks -> a new track",
        description="Edit a pose track. Frame edits (trim, offset, speed, smoothing, concatenation) change the "
                    "rows; code edits (amplitude, start from the photo's pose) and the loop mode are recorded "
                    "and applied when `pcavs generate --pose OUT.npz` makes the pose codes.")
    p.add_argument("track", help="track file (.npz)")
    p.add_argument("-o", "--output", required=True, help="track file to write (.npz)")
    p.add_argument("--trim", default=None, metavar="START:END", help="keep START..END seconds")
    p.add_argument("--offset", type=float, default=0.0, help="seconds: > 0 holds the first frame, < 0 skips")
    p.add_argument("--speed", type=float, default=1.0, help="playback speed (2 = twice as fast)")
    p.add_argument("--loop", choices=("pingpong", "repeat", "hold"), default=None,
                   help="how the motion continues past the track's end (default pingpong)")
    p.add_argument("--smooth", type=float, default=0.0, help="Gaussian smoothing, sigma in frames")
    p.add_argument("--amplitude", type=float, default=None, help="motion strength around the mean pose (1 = as is)")
    p.add_argument("--start-from-photo", action="store_true", default=None,
                   help="shift the motion so that it starts from the photo's own pose")
    p.add_argument("--mirror", action="store_true", help="flip the crops left-right (turns become mirrored)")
    p.add_argument("--concat", default=None, metavar="OTHER.npz", help="append another track")
    p.add_argument("--crossfade", type=int, default=0, help="frames of overlap with --concat (needs cached codes)")
    p.add_argument("--weights", default=None, help="cache this model's pose codes first (needed by --crossfade)")
    p.set_defaults(pose_func=run_edit)

    p = actions.add_parser("export-csv", help="track -> CSV of time, yaw, pitch, roll, filled, shot")
    p.add_argument("track", help="track file (.npz)")
    p.add_argument("-o", "--output", required=True, help="CSV to write")
    p.set_defaults(pose_func=run_export_csv)
    return parser


def _load_source(path: str, max_gap: int = 12):  # -> PoseTrack
    """A track file as it is, or a video tracked now (nothing written)."""
    from pcavs.infer.sources import check_input_file
    from pcavs.posetrack import extract_track, load_track

    p = check_input_file(path, "pose source")
    if p.suffix.lower() == ".npz":
        return load_track(p)
    return extract_track(p, max_gap=max_gap)


def _output(path: str, suffix: str):  # -> Path
    from pathlib import Path

    from pcavs.infer.sources import InputError

    out = Path(path)
    if out.suffix.lower() != suffix:
        raise InputError(f"{out}: expected a {suffix} file name")
    if not out.parent.is_dir():
        raise InputError(f"{out}: folder {out.parent} does not exist; create it or choose another -o")
    return out


def run_check(args: argparse.Namespace) -> int:
    from pcavs.face import FaceNotFoundError
    from pcavs.posetrack.check import check_track

    try:
        # track through gaps of any length so that the check can report each of them
        track = _load_source(args.source, max_gap=1 << 30)
    except FaceNotFoundError as e:  # no face at all is the check's answer, not a crash
        print(f"{args.source}\nproblem: {e}\nverdict: not usable as it is")
        return 2
    meta = track.meta
    report = check_track(track, model_family=args.model, source_fps=meta.get("source_fps"),
                         source_frames=meta.get("source_frames"), duration=meta.get("duration"),
                         max_gap=args.max_gap)
    print(report.text())
    return 0 if report.ok else 2


def run_show(args: argparse.Namespace) -> int:
    from pcavs.posetrack.show import render_track

    out = _output(args.output, ".png")
    track = _load_source(args.track)
    render_track(track, out, crops=not args.no_crops)
    print(f"wrote {out}: {len(track)} frames")
    return 0


def run_edit(args: argparse.Namespace) -> int:
    from pcavs.infer.sources import InputError
    from pcavs.posetrack import load_track
    from pcavs.posetrack.edit import TrackEdit, concat_tracks, edit_track, parse_trim

    out = _output(args.output, ".npz")
    edit = TrackEdit(trim=parse_trim(args.trim, "--trim"), speed=args.speed, offset=args.offset, smooth=args.smooth,
                     mirror=args.mirror,
                     amplitude=args.amplitude, start_from_photo=args.start_from_photo, loop=args.loop)
    track = load_track(args.track)
    other = load_track(args.concat) if args.concat else None
    if args.crossfade and other is None:
        raise InputError("--crossfade needs --concat OTHER.npz")
    if args.weights:
        from pcavs.infer import TalkingFacePipeline
        from pcavs.posetrack import add_codes

        pipe = TalkingFacePipeline.from_pretrained(args.weights, device="cpu")
        for t in (track, other):
            if t is not None and pipe.pose_encoder_hash not in t.codes:
                add_codes(t, pipe)
    if other is not None:
        track = concat_tracks(track, other, args.crossfade)
    track = edit_track(track, edit)
    track.save(out)
    print(f"wrote {out}: {len(track)} frames ({len(track) / track.fps:.2f} s); edits: "
          + ("; ".join(track.meta.get("edits", [])) or "none"))
    return 0


def run_export_csv(args: argparse.Namespace) -> int:
    import csv

    from pcavs.fileio import atomic_path

    out = _output(args.output, ".csv")
    track = _load_source(args.track)
    with atomic_path(out) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["frame", "time_s", "yaw_deg", "pitch_deg", "roll_deg", "score", "filled", "shot"])
        for i in range(len(track)):
            y, p, r = (float(v) for v in track.angles[i])
            w.writerow([i, f"{track.time[i]:.4f}", f"{y:.3f}", f"{p:.3f}", f"{r:.3f}",
                        f"{float(track.score[i]):.4f}", int(track.filled[i]), int(track.shot[i])])
    print(f"wrote {out}: {len(track)} rows")
    return 0


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
    if args.weights:
        from pcavs.infer import TalkingFacePipeline
        from pcavs.posetrack.extract import add_codes

        add_codes(track, TalkingFacePipeline.from_pretrained(args.weights, device="cpu"))
    track.save(out)
    yaw, pitch, roll = (track.angles[:, k] for k in range(3))
    print(f"wrote {out}: {len(track)} frames ({len(track) / track.fps:.2f} s), {int(track.shot.max()) + 1} "
          f"shot(s), {int(track.filled.sum())} filled; yaw {yaw.min():+.1f}..{yaw.max():+.1f}, pitch "
          f"{pitch.min():+.1f}..{pitch.max():+.1f}, roll {roll.min():+.1f}..{roll.max():+.1f} deg"
          + (f"; crops: {args.crops}" if args.crops else "") + f" ({time.perf_counter() - t0:.1f} s)",
          file=sys.stdout)
    return 0
