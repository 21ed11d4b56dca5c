"""Do the pose and mouth codes carry what the generator needs? Three quick checks before a long run.

``probe``: how much of the target frames' landmark variance a ridge regression recovers, on
held-out frames, from E's feature and the pose code (all 68 points) and from the audio's mouth
style (the 20 mouth points); R^2, 1 = all of it.
``angles``: how well head yaw, pitch and roll can be read (ridge, fitted on three quarters of the
identities, tested on the rest) from the pose code, from E's feature, from the FAN's heatmap landmarks, and from the
crop's exact landmarks; mean absolute error in degrees, split into the per-clip offset and the motion
within the clip. Needs shards with SynthTalk's ground truth (its per-frame angles).
``fit``: the generator and identity encoder trained for a few hundred steps with the *exact*
landmarks as codes (two trainable linear maps: landmarks -> pose code, landmarks -> mouth style),
against zero codes. If the landmark fit does not pull ahead, the generator or the schedule is the
bottleneck; if it does while the probe's R^2 is low, the encoders are.

    python -m pcavs.train.diagnose probe --weights runs/x/identity/weights --data data/synthtalk/shards-64
    python -m pcavs.train.diagnose fit --weights runs/x/identity/weights --data data/synthtalk/shards-64 --steps 1400
    python -m pcavs.train.diagnose angles --weights pcavs/assets/weights/synthtalk-small --data data/synthtalk/shards-64

Both need a dataset with landmarks (``pcavs preprocess`` stores them).
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor, nn

from pcavs.checkpoint import load_model
from pcavs.data.batch import Batch
from pcavs.data.dataset import DataConfig, infinite_batches
from pcavs.data.index import load_index
from pcavs.data.shards import iter_shard
from pcavs.eval.landmarks import MOUTH
from pcavs.losses.landmarks import soft_points
from pcavs.media import images_to_tensor
from pcavs.model import PCAVS


def _batches(root: str, batch_size: int, seed: int) -> Iterator[Batch]:
    cfg = DataConfig(root=root, clip_len=1, samples_per_clip=1, shift_negatives=0, seed=seed)
    for _, _, batch in infinite_batches(cfg, batch_size):
        if "landmarks" not in batch:
            raise ValueError(f"{root}: no landmarks stored; rerun `pcavs preprocess`, which stores them")
        yield batch


def _ridge_solve(design: Tensor, y: Tensor, fit_rows: Tensor, ridge: float) -> Tensor:
    """Coefficients of ``design -> y`` fitted by ridge regression on ``fit_rows`` (a bool mask)."""
    d, t = design[fit_rows], y[fit_rows]
    return torch.linalg.solve(d.T @ d + ridge * torch.eye(d.shape[1], dtype=d.dtype), d.T @ t)


def ridge_r2(x: Tensor, y: Tensor, ridge: float = 1e-2, fit_fraction: float = 0.75) -> float:
    """R^2 on the held-out rows of a ridge regression ``x -> y`` fitted on the first ``fit_fraction``."""
    n = int(len(x) * fit_fraction)
    if n < 2 or n >= len(x):
        raise ValueError(f"need rows on both sides of the split, got {len(x)} rows")
    mx, my = x[:n].mean(0), y[:n].mean(0)
    xc = torch.cat([x - mx, torch.ones(len(x), 1, dtype=x.dtype)], 1).double()
    yc = (y - my).double()
    fit_rows = torch.arange(len(x)) < n
    residual = (yc[n:] - xc[n:] @ _ridge_solve(xc, yc, fit_rows, ridge)).pow(2).sum()
    return float(1 - residual / (yc[n:] - yc[n:].mean(0)).pow(2).sum())


@torch.no_grad()
def probe(model: PCAVS, batches: Iterator[Batch], num_batches: int = 40) -> dict[str, float]:
    """Held-out R^2 of all landmarks from E's feature and pose code (of augmented frames), and of the
    mouth's landmarks from the audio's mouth style."""
    model.eval()
    rows: dict[str, list[Tensor]] = {"feature": [], "pose_code": [], "mouth_style": [], "landmarks": []}
    for _ in range(num_batches):
        b = next(batches)
        feature = model.E(b["augmented"][:, 0])
        rows["feature"].append(feature)
        rows["pose_code"].append(model.E.pose_code(feature))
        rows["mouth_style"].append(model.mouth_style(model.encode_audio(b["mel"][:, 0])))
        rows["landmarks"].append(b["landmarks"][:, 0].flatten(1))
    cat = {k: torch.cat(v) for k, v in rows.items()}
    out = {k: ridge_r2(cat[k], cat["landmarks"]) for k in ("feature", "pose_code")}
    mouth = cat["landmarks"].view(len(cat["landmarks"]), -1, 2)[:, MOUTH].flatten(1)
    out["mouth_style"] = ridge_r2(cat["mouth_style"], mouth)
    out["pose_code_std"] = float(cat["pose_code"].std(0).mean())
    return out


def fit(model: PCAVS, batches: Iterator[Batch], codes: str, steps: int, lr: float = 2e-3, seed: int = 0,
        log_every: int = 100, log=print) -> list[float]:
    """Train G and V for ``steps`` batches with ``codes`` 'landmarks' or 'zero'; the L1 of every step."""
    if codes not in ("landmarks", "zero"):
        raise ValueError(f"codes must be 'landmarks' or 'zero', got {codes!r}")
    torch.manual_seed(seed)
    model.train()
    points = 2 * model.cfg.nonidentity.num_landmarks
    to_pose = nn.Linear(points, model.cfg.mapping.pose_dim)
    to_mouth = nn.Linear(points, model.cfg.mouth_dim)
    params = [*model.G.parameters(), *model.V.parameters(), *to_pose.parameters(), *to_mouth.parameters()]
    opt = torch.optim.Adam(params, lr=lr, betas=(0.9, 0.99))
    losses: list[float] = []
    t0 = time.time()
    for step in range(steps):
        b = next(batches)
        size = b["frames"].shape[-1]
        target = b["frames"][:, 0]
        lm = (b["landmarks"][:, 0].flatten(1) - size / 2) / (size / 8)  # about unit scale
        if codes == "zero":
            lm = torch.zeros_like(lm)
        vector, identity_map = model.V(b["reference"])
        style = torch.cat([vector, to_mouth(lm), to_pose(lm)], 1)
        loss = (model.G(style, identity_map, noise="none") - target).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if log_every and (step + 1) % log_every == 0:
            recent = losses[-log_every:]
            log(f"{codes}: step {step + 1}/{steps}, L1 {sum(recent) / len(recent):.4f} ({time.time() - t0:.0f} s)")
    return losses


def copy_l1(batches: Iterator[Batch], num_batches: int = 20) -> float:
    """L1 of the reference photo itself against the target: the bar a useful generator must pass."""
    diffs = [(b["reference"] - b["frames"][:, 0]).abs().mean() for b in itertools.islice(batches, num_batches)]
    return float(torch.stack(diffs).mean())


ANGLES = ("yaw", "pitch", "roll")


def ridge_predict(x: Tensor, y: Tensor, fit_rows: Tensor, ridge: float = 0.1) -> Tensor:
    """Predictions for every row of a ridge regression ``x -> y`` fitted on ``fit_rows`` (a bool mask);
    the features are standardised on the fitted rows, so ``ridge`` means the same for any feature scale."""
    x, y = x.double(), y.double()
    mean, std = x[fit_rows].mean(0), x[fit_rows].std(0) + 1e-6
    xs = torch.cat([(x - mean) / std, torch.ones(len(x), 1, dtype=x.dtype)], 1)
    return xs @ _ridge_solve(xs, y, fit_rows, ridge)


def angle_errors(pred: Tensor, truth: Tensor, clip: Tensor, rows: Tensor) -> dict[str, list[float]]:
    """Mean absolute error per angle on ``rows``: ``absolute``; ``offset``, of each clip's mean error
    (what a crop normalised per clip hides); ``motion``, of the error less its clip mean."""
    err, ids = (pred - truth)[rows].double(), clip[rows]
    offsets, motion = [], []
    for c in ids.unique():
        e = err[ids == c]
        offsets.append(e.mean(0))
        motion.append(e - e.mean(0))
    return {"absolute": err.abs().mean(0).tolist(), "offset": torch.stack(offsets).abs().mean(0).tolist(),
            "motion": torch.cat(motion).abs().mean(0).tolist()}


@torch.no_grad()
def collect_angles(model: PCAVS, root: str, frames_per_clip: int = 10) -> dict[str, Tensor]:
    """Per sampled frame: the pose code, E's feature, the FAN's soft landmarks, the exact landmarks, the true angles
    (yaw, pitch, roll from the clip's ground truth), the clip and label indices."""
    model.eval()
    _, clips = load_index(root)
    label_of = {c.key: c.label for c in clips}
    rows: dict[str, list[Tensor]] = {k: [] for k in ("pose_code", "feature", "fan_points", "landmarks", "angles")}
    clip_ids: list[int] = []
    label_ids: list[int] = []
    for shard in dict.fromkeys(c.shard for c in clips):
        for key, fields in iter_shard(shard):
            truth = fields["json"].get("groundtruth", {}).get("frames")
            if not truth or "landmarks.npy" not in fields:
                raise ValueError(f"{shard}: clip {key} has no ground-truth angles or landmarks; "
                                 "`angles` needs SynthTalk shards (`pcavs synth`, then `pcavs preprocess`)")
            frames = fields["frames.npy"]
            idx = np.linspace(0, len(frames) - 1, frames_per_clip).round().astype(int)
            x = images_to_tensor(frames[idx])
            feature = model.E(x)
            rows["pose_code"].append(model.E.pose_code(feature))
            rows["feature"].append(feature.flatten(1))
            rows["fan_points"].append(soft_points(model.E.model.heatmaps(x), x.shape[-1]).flatten(1))
            rows["landmarks"].append(torch.from_numpy(fields["landmarks.npy"][idx]).float().flatten(1))
            rows["angles"].append(torch.tensor([[truth[i][a] for a in ANGLES] for i in idx]))
            clip_ids += [len(rows["angles"]) - 1] * frames_per_clip
            label_ids += [label_of[key]] * frames_per_clip
    out = {k: torch.cat(v) for k, v in rows.items()}
    out["clip"], out["label"] = torch.tensor(clip_ids), torch.tensor(label_ids)
    return out


def angle_probe(data: dict[str, Tensor], test_share: float = 0.25) -> dict[str, dict[str, list[float]]]:
    """:func:`angle_errors` of ridge read-outs of the angles, tested on the last ``test_share`` of the
    identities (unseen by the fit); ``mean only`` predicts the fitted rows' mean angles. Read-outs
    absent from ``data`` are skipped."""
    test = data["label"] >= int(round(int(data["label"].max() + 1) * (1 - test_share)))
    if test.all() or not test.any():
        raise ValueError("need identities on both sides of the split")
    y = data["angles"]
    out = {"mean only": angle_errors(y[~test].mean(0).expand_as(y), y, data["clip"], test)}
    for name in ("pose_code", "feature", "fan_points", "landmarks"):
        if name not in data:
            continue
        out[name] = angle_errors(ridge_predict(data[name], y, ~test), y, data["clip"], test)
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m pcavs.train.diagnose", description=__doc__.split("\n\n")[0])
    p.add_argument("check", choices=("probe", "fit", "angles"))
    p.add_argument("--weights", required=True, help="pcavs weights folder (e.g. a run's identity-stage weights)")
    p.add_argument("--data", required=True, help="preprocessed dataset with landmarks")
    p.add_argument("--steps", type=int, default=1400, help="fit: steps per arm")
    p.add_argument("--batch-size", type=int, default=16)
    args = p.parse_args(argv)
    if args.check == "angles":
        data = collect_angles(load_model(args.weights), args.data)
        n = len(data["clip"])
        points, exact = data["fan_points"].view(n, -1, 2), data["landmarks"].view(n, -1, 2)
        print(f"FAN landmarks: {(points - exact).norm(dim=-1).mean():.2f} px from the exact ones "
              f"(the mean face: {(exact - exact.mean(0)).norm(dim=-1).mean():.2f} px)")
        print(f"{'read from':12s}" + "".join(f"{h:>21s}" for h in ("absolute", "per-clip offset", "motion"))
              + "   (deg: yaw pitch roll)")
        for name, errors in angle_probe(data).items():
            print(f"{name:12s}" + "".join(" " + "".join(f"{v:7.2f}" for v in errors[k]) for k in errors))
        return
    if args.check == "probe":
        result = probe(load_model(args.weights), _batches(args.data, 64, seed=11))
        print("  ".join(f"{k} {v:.3f}" for k, v in result.items()))
        return
    print(f"copying the reference photo: L1 {copy_l1(_batches(args.data, args.batch_size, seed=5)):.4f}")
    for codes in ("landmarks", "zero"):  # both arms see the same batches in the same order
        losses = fit(load_model(args.weights), _batches(args.data, args.batch_size, seed=5), codes, args.steps)
        tail = losses[-max(1, args.steps // 10) :]
        print(f"{codes}: final L1 {sum(tail) / len(tail):.4f}")


if __name__ == "__main__":
    main()
