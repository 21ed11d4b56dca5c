"""Training phases as modules whose ``forward`` returns named loss terms.

Each phase is a module so DDP can wrap it (one forward, one backward, gradients averaged across
ranks). Phases never switch on a mode string: a stage simply builds the phases it needs.

- :class:`LandmarkPhase` (stage ``landmarks``): the FAN's 68 heatmaps regress the dataset's
  landmarks (face alignment, the released E_n's starting point).
- :class:`SyncPhase` (stage ``sync``): contrastive sync between the visual content of augmented
  frames (FAN -> ``to_mouth``) and the audio content, in both directions, plus the cross-modal L1.
- :class:`IdentityPhase` (stage ``identity``): identity classification on the identity encoder.
- :class:`GeneratorPhase` (stage ``joint``, G step): everything above plus reconstruction through
  the generator, judged by the discriminator (hinge), its features, L1, a perceptual loss and
  (ours, off by default) L1 inside the lip box, the frozen FAN's heatmaps of the generated frame
  matched to the real frame's, 1 - SSIM, the pose code's correlation with the target's landmark
  geometry and the generated frame's geometry against the real frame's (:mod:`pcavs.losses.posegeometry`).
- :class:`DiscriminatorPhase` (stage ``joint``, D step): hinge loss on real and generated frames.

Which stage runs which phase and trains which modules is the table in :mod:`pcavs.train.stages`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pcavs.data.batch import Batch
from pcavs.losses import (
    LossTerm,
    PerceptualLoss,
    contrastive_sync_terms,
    crossmodal_l1_loss,
    d_hinge_terms,
    feature_matching_loss,
    g_hinge_loss,
    heatmap_match_loss,
    identity_loss,
    landmark_loss,
    masked_l1,
    mouth_mask,
    output_geometry_loss,
    pose_geometry_loss,
    soft_points,
    ssim_loss,
)
from pcavs.model import PCAVS
from pcavs.nn.discriminator import MultiscaleDiscriminator
from pcavs.nn.nonidentity import FAN
from pcavs.train.config import LossConfig


def _flat(x: Tensor) -> Tensor:
    """(B, K, ...) -> (B*K, ...): clips become independent frames."""
    return x.reshape(-1, *x.shape[2:])


def _landmarks(batch: Batch, what: str) -> Tensor:
    """The batch's stored landmarks, (B*K, 68, 2), or an error naming the option that needs them."""
    if "landmarks" not in batch:
        raise ValueError(
            f"{what} needs a dataset with landmarks (landmarks.npy per clip); "
            "rerun `pcavs preprocess` on it, which stores them"
        )
    return _flat(batch["landmarks"])


def _heatmap_loss(fan: FAN, batch: Batch, cfg: LossConfig, what: str) -> tuple[Tensor, Tensor]:
    """(loss, heatmaps) of the FAN on the un-augmented frames against the stored landmarks."""
    points = _landmarks(batch, what)
    frames = _flat(batch["frames"])
    heat = fan.heatmaps(frames)
    return landmark_loss(heat, points, frames.shape[-1], cfg.landmark_sigma), heat


def _keep_landmarks_term(fan: FAN, batch: Batch, cfg: LossConfig) -> LossTerm:
    """The landmarks stage's loss, kept on in a later stage."""
    return LossTerm("keep_landmarks", cfg.keep_landmarks, _heatmap_loss(fan, batch, cfg, "loss.keep_landmarks")[0])


def _sync_terms(a: Tensor, v: Tensor, a_neg: Tensor | None, cfg: LossConfig, suffix: str = "") -> list[LossTerm]:
    v2a, a2v = contrastive_sync_terms(
        a, v, extra_neg_a=a_neg, temperature=cfg.sync_temperature, similarity=cfg.sync_similarity
    )
    return [
        LossTerm(f"sync_v2a{suffix}", cfg.sync, v2a, key="sync"),
        LossTerm(f"sync_a2v{suffix}", cfg.sync, a2v, key="sync"),
        LossTerm(f"crossmodal{suffix}", cfg.crossmodal, crossmodal_l1_loss(a, v), key="crossmodal"),
    ]


class LandmarkPhase(nn.Module):
    """E's FAN learns 68-point face alignment on the (un-augmented) frames."""

    def __init__(self, model: PCAVS, cfg: LossConfig) -> None:
        super().__init__()
        self.fan = model.E.model
        self.cfg = cfg

    def forward(self, batch: Batch) -> tuple[list[LossTerm], dict[str, Tensor]]:
        loss, heat = _heatmap_loss(self.fan, batch, self.cfg, "the landmarks stage")
        return [LossTerm("landmarks", self.cfg.landmarks, loss)], {"heatmaps": heat.detach()}


class SyncPhase(nn.Module):
    """E (FAN + to_mouth) and A_sync learn a shared speech-content space."""

    def __init__(self, model: PCAVS, cfg: LossConfig) -> None:
        super().__init__()
        self.E, self.A = model.E, model.A_sync
        self.cfg = cfg

    def forward(self, batch: Batch) -> tuple[list[LossTerm], dict[str, Tensor]]:
        v = self.E.visual_content(self.E(_flat(batch["augmented"])))
        a = self.A(_flat(batch["mel"]))
        a_neg = None
        if "mel_shifted" in batch and batch["mel_shifted"].shape[2] > 0:
            shifted = batch["mel_shifted"]  # (B, K, M, 1, 80, 20): same clip, shifted in time
            m = shifted.shape[2]
            a_neg = self.A(shifted.reshape(-1, *shifted.shape[3:])).view(-1, m, a.shape[1])
        terms = _sync_terms(a, v, a_neg, self.cfg)
        if self.cfg.keep_landmarks > 0:
            terms.append(_keep_landmarks_term(self.E.model, batch, self.cfg))
        return terms, {"audio": a.detach(), "visual": v.detach()}


class IdentityPhase(nn.Module):
    """V learns identities by classification (its ``fc`` head)."""

    def __init__(self, model: PCAVS, cfg: LossConfig) -> None:
        super().__init__()
        self.V = model.V
        self.cfg = cfg

    def forward(self, batch: Batch) -> tuple[list[LossTerm], dict[str, Tensor]]:
        images = torch.cat([batch["reference"], _flat(batch["frames"])])
        k = batch["frames"].shape[1]
        labels = torch.cat([batch["label"], batch["label"].repeat_interleave(k)])
        logits = self.V.classify(self.V(images)[0])
        return [LossTerm("identity", self.cfg.identity, identity_loss(logits, labels))], {"logits": logits.detach()}


class GeneratorPhase(nn.Module):
    """Everything but D: encoders, mappings and G, trained to reconstruct the target frames."""

    def __init__(self, model: PCAVS, cfg: LossConfig, perceptual: PerceptualLoss, generate_from: tuple[str, ...]):
        super().__init__()
        self.V, self.E, self.A, self.G = model.V, model.E, model.A_sync, model.G
        self.cfg = cfg
        self.generate_from = generate_from
        object.__setattr__(self, "perceptual", perceptual)  # a fixed metric: not a trained submodule
        # D judges the G step but is trained by its own phase: not a submodule (DDP would then expect
        # gradients for its parameters here)
        object.__setattr__(self, "discriminator", model.D)

    def forward(self, batch: Batch) -> tuple[list[LossTerm], dict[str, Tensor]]:
        discriminator: MultiscaleDiscriminator = self.discriminator
        real = _flat(batch["frames"])
        k = batch["frames"].shape[1]
        nonid = self.E(_flat(batch["augmented"]))
        visual = self.E.visual_content(nonid)
        pose = self.E.pose_code(nonid)
        audio = self.A(_flat(batch["mel"]))
        id_vec, id_map = self.V(batch["reference"])
        terms = _sync_terms(audio, visual, None, self.cfg)
        terms.append(LossTerm("identity", self.cfg.identity, identity_loss(self.V.classify(id_vec), batch["label"])))
        if self.cfg.keep_landmarks > 0:
            terms.append(_keep_landmarks_term(self.E.model, batch, self.cfg))
        if self.cfg.pose_geometry > 0:
            geometry = pose_geometry_loss(pose, _landmarks(batch, "loss.pose_geometry"))
            terms.append(LossTerm("pose_geometry", self.cfg.pose_geometry, geometry))
        id_vec, id_map = id_vec.repeat_interleave(k, 0), id_map.repeat_interleave(k, 0)
        # with neither adversarial nor feature-matching weight, D would be run only to be ignored
        judged = self.cfg.gan != 0 or self.cfg.feat != 0
        mouth = mouth_mask(_landmarks(batch, "loss.mouth"), real.shape[-1]) if self.cfg.mouth > 0 else None
        pred_real = discriminator(real) if judged else None
        heat_real = points_real = None
        if self.cfg.heatmaps > 0 or self.cfg.output_geometry > 0:
            with torch.no_grad():
                heat_real = self.E.model.heatmaps(real)
            if self.cfg.output_geometry > 0:
                points_real = soft_points(heat_real, real.shape[-1])
        outputs: dict[str, Tensor] = {}
        for source in self.generate_from:
            content = audio if source == "audio" else visual
            style = torch.cat([id_vec, self.E.mouth_style(content), pose], 1)
            fake = self.G(style, id_map, noise="random")
            outputs[f"fake_{source}"] = fake
            sfx = "" if len(self.generate_from) == 1 else f"_{source}"
            if pred_real is not None:
                pred_fake = discriminator(fake)
                terms += [
                    LossTerm(f"gan{sfx}", self.cfg.gan, g_hinge_loss(pred_fake), key="gan"),
                    LossTerm(f"feat{sfx}", self.cfg.feat, feature_matching_loss(pred_fake, pred_real), key="feat"),
                ]
            terms += [
                LossTerm(f"l1{sfx}", self.cfg.l1, _pyramid_l1(fake, real, discriminator.num_scales), key="l1"),
                LossTerm(f"vgg{sfx}", self.cfg.vgg, self.perceptual(fake, real), key="vgg"),
            ]
            if mouth is not None:
                terms.append(LossTerm(f"mouth{sfx}", self.cfg.mouth, masked_l1(fake, real, mouth), key="mouth"))
            if heat_real is not None:
                heat_fake = self.E.model.heatmaps(fake)
                if self.cfg.heatmaps > 0:
                    heat = heatmap_match_loss(heat_fake, heat_real)
                    terms.append(LossTerm(f"heatmaps{sfx}", self.cfg.heatmaps, heat, key="heatmaps"))
                if points_real is not None:
                    geo = output_geometry_loss(soft_points(heat_fake, fake.shape[-1]), points_real)
                    w = self.cfg.output_geometry
                    terms.append(LossTerm(f"output_geometry{sfx}", w, geo, key="output_geometry"))
            if self.cfg.ssim > 0:
                terms.append(LossTerm(f"ssim{sfx}", self.cfg.ssim, ssim_loss(fake, real), key="ssim"))
        return terms, outputs


class DiscriminatorPhase(nn.Module):
    def __init__(self, discriminator: MultiscaleDiscriminator, cfg: LossConfig) -> None:
        super().__init__()
        self.D = discriminator
        self.cfg = cfg

    def forward(self, real: Tensor, fake: Tensor) -> tuple[list[LossTerm], dict[str, Tensor]]:
        # one pass over real and fake together, as the released code does
        preds = self.D(torch.cat([fake.detach(), real]))
        n = fake.shape[0]
        pred_fake = [[f[:n] for f in scale] for scale in preds]
        pred_real = [[f[n:] for f in scale] for scale in preds]
        d_real, d_fake = d_hinge_terms(pred_real, pred_fake)
        return [LossTerm("d_real", self.cfg.gan, d_real, key="gan"),
                LossTerm("d_fake", self.cfg.gan, d_fake, key="gan")], {}  # fmt: skip


def _pyramid_l1(fake: Tensor, real: Tensor, scales: int) -> Tensor:
    """L1 at every discriminator scale: the released feature matching's input-image term."""
    total = fake.new_zeros(())
    for _ in range(scales):
        total = total + F.l1_loss(fake, real)
        fake = F.avg_pool2d(fake, 3, stride=2, padding=1, count_include_pad=False)
        real = F.avg_pool2d(real, 3, stride=2, padding=1, count_include_pad=False)
    return total / scales
