"""Do pose-track edits act on the rendered head as they say? Measured on SynthTalk with a model and the
SynthTalk benchmark's pose estimator.

    python benchmarks/pose_edits.py [--weights pcavs/assets/weights/synthtalk-small] [--cases 6]

Per case: B's talking video is rendered and written, its track extracted (``pcavs pose extract``), and
A's photo is driven by the track as it is and edited: amplitude 0.5, mirror, and smoothing (sigma 3)
of a track with 2-frame jitter added. The generated frames are read by the estimator (yaw, pitch,
roll in the ``pcavs.eval.headpose`` convention). Printed: the spread (std over time) of each rendered angle
with amplitude 0.5 over that with 1.0, the correlation of the rendered yaw with and without mirror, and
the frame-to-frame jitter of the rendered angles with and without smoothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from pcavs.infer import TalkingFacePipeline
from pcavs.media import VideoWriter, read_video_frames
from pcavs.posetrack import extract_track
from pcavs.posetrack.edit import TrackEdit, edit_track
from pcavs.synth.benchmark import RENDER_SIZE, make_triples, person, photo_pose
from pcavs.synth.motion import sample_pose
from pcavs.synth.render import render
from pcavs.synth.speech import speech_clip

sys.path.insert(0, str(Path(__file__).parent))
from synthtalk import load_or_train_estimator  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default="pcavs/assets/weights/synthtalk-small")
    ap.add_argument("--cases", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--estimator", type=Path, default=Path("benchmarks/estimators/synthtalk-clip-{size}.pt"))
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    pipe = TalkingFacePipeline.from_pretrained(args.weights, device="cpu")
    size = pipe.image_size
    est = load_or_train_estimator(Path(str(args.estimator).format(size=size)), size)
    rows = []
    t0 = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="pose-edits-"))
    for i, t in enumerate(make_triples(args.cases, seed=1)):
        n = int(round(args.seconds * 25))
        audio, _ = speech_clip(t.speech, args.seconds)
        driver = render(person(t.pose), sample_pose(t.pose, n, intensity=0.6), audio, RENDER_SIZE, blink_seed=t.pose)
        video = tmp / f"driver{i}.mp4"
        with VideoWriter(video, crf=12, preset="ultrafast") as w:
            w.write(driver.frames)
        photo = render(person(t.identity), photo_pose(t), np.zeros(16000), RENDER_SIZE).frames[0]
        track = extract_track(video, size=size, max_gap=25)  # cartoon heads turned far lose dlib for a while
        jitter = edit_track(track, TrackEdit())
        jitter.align = jitter.align.copy()
        jitter.align[::2, :, 2] += 1.5  # the crop jumps 1.5 px every other frame
        variants = {
            "as is": track,
            "amplitude 0.5": edit_track(track, TrackEdit(amplitude=0.5)),
            "mirror": edit_track(track, TrackEdit(mirror=True)),
            "jitter": jitter,
            "jitter smoothed": edit_track(jitter, TrackEdit(smooth=3.0)),
        }
        angles = {}
        for name, tr in variants.items():
            path = tmp / f"t{i}.npz"
            tr.save(path)
            out = tmp / f"out{i}.mp4"
            pipe.generate(photo, audio, str(path), output=out, overwrite=True, noise="none")
            frames = np.stack(list(read_video_frames(out)))
            angles[name] = est.predict(frames)[:, :3]
        spread = {k: angles[k].std(0) for k in angles}
        yaw_corr = float(np.corrcoef(angles["as is"][:, 0], angles["mirror"][:, 0])[0, 1])
        jit = {k: float(np.abs(np.diff(angles[k], axis=0)).mean()) for k in ("as is", "jitter", "jitter smoothed")}
        row = {"amplitude_spread_ratio": (spread["amplitude 0.5"] / spread["as is"]).tolist(),
               "mirror_yaw_corr": yaw_corr, "jitter": jit, "spread_as_is": spread["as is"].tolist()}
        rows.append(row)
        print(f"case {i}: spread ratio yaw/pitch/roll {np.round(row['amplitude_spread_ratio'], 3).tolist()}, "
              f"mirror yaw corr {yaw_corr:+.3f}, jitter as is {jit['as is']:.2f} / jittered {jit['jitter']:.2f} / "
              f"smoothed {jit['jitter smoothed']:.2f} deg/frame", flush=True)
    ratio = np.mean([r["amplitude_spread_ratio"] for r in rows], 0)
    corr = float(np.mean([r["mirror_yaw_corr"] for r in rows]))
    jit = {k: float(np.mean([r["jitter"][k] for r in rows])) for k in rows[0]["jitter"]}
    print(f"\n{args.cases} cases, {time.perf_counter() - t0:.0f} s; model {args.weights}")
    print(f"amplitude 0.5: rendered angle spread / spread at 1.0 (yaw, pitch, roll): {np.round(ratio, 3).tolist()}")
    print(f"mirror: correlation of rendered yaw with the unmirrored: {corr:+.3f}")
    print(f"frame-to-frame jitter of rendered angles (deg): as is {jit['as is']:.3f}, 1.5 px crop jitter "
          f"{jit['jitter']:.3f}, jitter smoothed (sigma 3) {jit['jitter smoothed']:.3f}")
    if args.json:
        args.json.write_text(json.dumps({"per_case": rows, "amplitude_spread_ratio": ratio.tolist(),
                                         "mirror_yaw_corr": corr, "jitter": jit}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
