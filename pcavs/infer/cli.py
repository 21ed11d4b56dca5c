"""``pcavs generate``: arguments and the command function (wired into ``pcavs.cli`` by the lead).

Exit status: 0 written; 2 a problem the user can fix (bad file, no face, wrong weights, bad option),
printed as one ``error: ...`` message, with no output file left behind; 130 after Ctrl-C and 143 after
SIGTERM, each with one line and no file left behind. Warnings (silent audio, an ignored --pose, several
faces in the photo) are printed as ``warning: ...`` when they occur. The progress bar goes to stderr
and ``--quiet`` turns it off; the summary line goes to stdout.
"""

from __future__ import annotations

import argparse
import signal
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from typing import Any

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``pcavs generate`` options to ``parser``."""
    from pcavs.posetrack import DEFAULT_LOOP, LOOP_MODES

    from .pipeline import DETECTORS, NOISE_MODES, POSE_MODES, PRECISIONS, GenerationOptions

    d = GenerationOptions()  # every default comes from the options the library uses

    io = parser.add_argument_group("inputs and output")
    io.add_argument("--identity", required=True, metavar="PHOTO", help="photo of the person (any Pillow format)")
    io.add_argument("--audio", required=True, metavar="AUDIO",
                    help="speech: any audio file, or a video with sound (required for --pose-mode self)")
    io.add_argument("--pose", metavar="VIDEO|TRACK",
                    help="video whose head movement drives the pose, or its track (.npz, `pcavs pose extract`)")
    io.add_argument("--pose-mode", choices=POSE_MODES, default=None,
                    help="video: from --pose (default when given); still: the photo's own pose (default "
                         "otherwise); frontal: zero pose code; self: from the --audio video")
    io.add_argument("--weights", default=None, metavar="DIR",
                    help="pcavs weights folder (config.json + model.safetensors) or official latest_net_*.pth "
                         "folder (default: the built-in SynthTalk cartoon model)")
    io.add_argument("-o", "--output", required=True, metavar="OUT.mp4",
                    help="video to write (.mp4/.mov/.mkv); never one of the inputs")
    io.add_argument("-y", "--overwrite", action="store_true", help="replace OUT.mp4 if it exists (default: refuse)")
    mo = parser.add_argument_group("pose motion (edits of the pose video or track, as `pcavs pose edit`)")
    mo.add_argument("--pose-trim", default=None, metavar="START:END", help="use START..END seconds of the pose")
    mo.add_argument("--pose-offset", type=float, default=0.0, metavar="S",
                    help="seconds: > 0 holds the first pose that long, < 0 starts that far in")
    mo.add_argument("--pose-speed", type=float, default=1.0, metavar="X", help="motion speed (2 = twice as fast)")
    mo.add_argument("--pose-loop", choices=LOOP_MODES, default=None,
                    help=f"when the pose is shorter than the audio (default {DEFAULT_LOOP})")
    mo.add_argument("--pose-smooth", type=float, default=0.0, metavar="SIGMA",
                    help="Gaussian smoothing of the motion, sigma in frames")
    mo.add_argument("--pose-amplitude", type=float, default=None, metavar="A",
                    help="motion strength around the mean pose (0.5 = half, 1 = as is)")
    mo.add_argument("--pose-start-from-photo", action="store_true", default=None,
                    help="shift the motion so that it starts from the photo's own pose")
    mo.add_argument("--pose-mirror", action="store_true", help="mirror the motion (left turns become right turns)")
    gen = parser.add_argument_group("generation")
    gen.add_argument("--mouth-weight", type=float, default=None, metavar="W",
                     help="scale of the speech feature (default: the model's, 1.2 as in the official demo)")
    gen.add_argument("--batch-size", type=int, default=d.batch_size, metavar="N",
                     help=f"frames per forward pass (default {d.batch_size})")
    gen.add_argument("--device", choices=("cpu", "cuda", "auto"), default="auto", help="default auto")
    gen.add_argument("--fps", type=int, default=25, help="output frame rate (default 25, the model's)")
    gen.add_argument("--face-index", type=int, default=0, metavar="K",
                     help="which face of the photo: 0 = largest (default), 1 = next, ...")
    gen.add_argument("--detector", choices=DETECTORS, default=d.detector,
                     help="pose video face tracking: hog+cnn (default: the CNN where HOG misses the face) or hog "
                          "(faster, frontal faces only)")
    gen.add_argument("--max-gap", type=int, default=d.max_gap, metavar="N",
                     help=f"pose video: longest run of face-less frames that is interpolated (default {d.max_gap}; "
                          "longer runs stop with an error naming the frames)")
    gen.add_argument("--paste-back", action="store_true",
                     help="blend the generated face into the full identity photo (output has the photo's size, "
                          "longer side capped by --max-size)")
    gen.add_argument("--max-size", type=int, default=d.max_size, metavar="PX",
                     help=f"--paste-back: scale the video so its longer side is at most PX (default {d.max_size}; "
                          "0: the photo's size, refused beyond H.264's largest level, 8192x4352)")
    gen.add_argument("--precision", choices=PRECISIONS, default=d.precision,
                     help="bf16: autocast, about 1.7x faster on CPU, max |diff| about 1e-3 (default fp32)")
    gen.add_argument("--seed", type=int, default=d.seed, help=f"seed of the generator noise (default {d.seed})")
    gen.add_argument("--noise", choices=NOISE_MODES, default=d.noise,
                     help="generator noise: random (official, seeded), const, none")
    gen.add_argument("--align-audio", action="store_true",
                     help="centre each speech window on its frame (for models trained that way; the official "
                          "and pcavs models pair frame i with the window centred 15 ms earlier)")
    gen.add_argument("--threads", type=int, default=0, metavar="N",
                     help="CPU threads for torch and numpy's BLAS (default 0: their choice; 1 avoids "
                     "oversubscription on busy machines)")
    gen.add_argument("--quiet", action="store_true", help="no progress bar")


def _print_warning(message: Any, category: type[Warning], filename: str, lineno: int, file: Any = None,
                   line: str | None = None) -> None:
    print(f"warning: {message}", file=sys.stderr)


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that the writer's cleanup (no partial file) runs."""


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated


@contextmanager
def _sigterm_raises() -> Iterator[None]:
    try:
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:  # not the main thread (e.g. called from a server): leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(args: argparse.Namespace) -> int:
    """Run ``pcavs generate``; returns the exit status (2 for input errors, which are printed;
    130 after Ctrl-C, 143 after SIGTERM: one line, no output file)."""
    try:
        with _sigterm_raises():
            return _run(args)
    except KeyboardInterrupt:
        print("interrupted (Ctrl-C): stopped, no output written", file=sys.stderr)
        return 130
    except Terminated:
        print("terminated (SIGTERM): stopped, no output written", file=sys.stderr)
        return 143


def _run(args: argparse.Namespace) -> int:
    from pcavs.errors import UserError

    from .demo import DEMO_WEIGHTS
    from .pipeline import InputWarning, generate_video

    threads = getattr(args, "threads", 0) or 0
    if threads < 0:
        print(f"error: --threads must be 1 or more (0: torch's default), got {threads}", file=sys.stderr)
        return 2
    if threads:
        from pcavs.device import set_cpu_threads

        set_cpu_threads(threads)
    weights = args.weights
    if weights is None:
        weights = DEMO_WEIGHTS
        print(f"note: no --weights given: using the built-in model {DEMO_WEIGHTS.name}, trained on SynthTalk "
              "cartoon faces (a demo, not for real photos); for real faces get the official PC-AVS checkpoint "
              "and pass --weights (see the README, 'The official checkpoint')", file=sys.stderr)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", InputWarning)
            warnings.showwarning = _print_warning
            result = generate_video(
                args.identity, args.audio, args.output, weights=weights, pose=args.pose, pose_mode=args.pose_mode,
                device=args.device, fps=args.fps, face_index=args.face_index, **_options(args),
            )
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(result.summary())
    return 0


def _options(args: argparse.Namespace) -> dict[str, Any]:
    """The GenerationOptions fields from the parsed flags (flag name = field name, but for these)."""
    from .pipeline import GenerationOptions

    derived = {"progress": not args.quiet, "pose_edit": _pose_edit(args)}
    no_flag = {"pose_face_index"}  # the pose video's face keeps the library's default (--face-index: the photo's)
    # an AttributeError here: a new option without its flag
    return {f.name: derived[f.name] if f.name in derived else getattr(args, f.name)
            for f in fields(GenerationOptions) if f.name not in no_flag}


def _pose_edit(args: argparse.Namespace) -> Any:
    """The --pose-* motion options as one TrackEdit, or None when none is given."""
    from pcavs.posetrack import TrackEdit
    from pcavs.posetrack.edit import parse_trim

    edit = TrackEdit(trim=parse_trim(args.pose_trim, "--pose-trim"), speed=args.pose_speed, offset=args.pose_offset,
                     smooth=args.pose_smooth,
                     mirror=args.pose_mirror, amplitude=args.pose_amplitude,
                     start_from_photo=args.pose_start_from_photo, loop=args.pose_loop)
    return None if edit == TrackEdit() else edit


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (``python -m pcavs.infer.cli``), the same as ``pcavs generate``."""
    parser = argparse.ArgumentParser(prog="pcavs generate", description="talking-face video from a photo and speech")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
