"""Training configuration: stages as named presets, overridable with ``key=value``.

The stages follow the paper: ``landmarks`` (the non-identity encoder's FAN learns face alignment,
the task the released E_n was initialised from), ``sync`` (non-identity encoder, visual-content
mapping and audio encoder with the contrastive loss), ``identity`` (identity encoder by
classification) and ``joint`` (everything, by reconstruction with the discriminator). Each starts
from the previous one's weights (``init_from``). The resolved config is saved with every run (``config.json``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pcavs.config import ConfigError, apply_overrides
from pcavs.data.augment import AugmentConfig

Stage = Literal["landmarks", "sync", "identity", "joint"]


@dataclass(frozen=True)
class LossConfig:
    """Weights of the named terms; defaults are the released code's (lambda_* options)."""

    gan: float = 1.0
    feat: float = 10.0  # discriminator feature matching (intermediate layers)
    l1: float = 10.0  # the released feature matching also compares the input images (lambda_image=1 x 10)
    vgg: float = 10.0
    sync: float = 100.0  # contrastive sync loss, each direction (paper eq. 1-2 adds both)
    crossmodal: float = 1.0
    identity: float = 1.0
    landmarks: float = 1.0  # heatmap MSE of the ``landmarks`` stage
    landmark_sigma: float = 1.0  # Gaussian width of the heatmap targets, in heatmap pixels
    # The same heatmap loss kept on during sync and joint (0: off, as released). Without it the sync
    # loss repurposes the FAN's 68 heatmaps, from which the pose code is computed (small-sync, 600
    # steps: landmark error 4 -> 18 px; with keep_landmarks=1, 13 px; freeze_fan_trunk keeps 4 px)
    keep_landmarks: float = 0.0
    # L1 inside the target's lip box (joint; 0: off, as released); needs landmarks in the shards
    mouth: float = 0.0
    # ours, 0 as released (joint): the FAN's 68 heatmaps of the generated frame matched to the real
    # frame's (a face-alignment perceptual term: head pose and lip shape); needs freeze_fan_trunk
    heatmaps: float = 0.0
    ssim: float = 0.0  # ours, 0 as released (joint): 1 - SSIM of the generated and real frames
    # ours, 0 as released (joint): the pose code's first 4 dims follow the target's landmark geometry
    # (roll, yaw, pitch; pcavs.losses.posegeometry); needs landmarks in the shards
    pose_geometry: float = 0.0
    # ours, 0 as released (joint): the generated frame's head geometry (roll, turn, nod read by the frozen
    # FAN's soft landmarks) matched to the real frame's (pcavs.losses.posegeometry); needs freeze_fan_trunk
    output_geometry: float = 0.0
    perceptual: Literal["vgg19", "stlpips", "none"] = "vgg19"
    vgg19_weights: str = ""  # path to torchvision's vgg19-dcbb9e9d.pth; empty: the torch hub cache
    sync_similarity: Literal["cosine", "inverse_l2"] = "cosine"  # paper: cosine; released code: 1/L2
    sync_temperature: float = 1.0


@dataclass(frozen=True)
class OptimConfig:
    """Adam as released: G lr 5e-4 (amsgrad), D lr 2e-3, betas (0, 0.9)."""

    lr_g: float = 5e-4
    lr_d: float = 2e-3
    beta1: float = 0.0
    beta2: float = 0.9
    amsgrad_g: bool = True
    grad_clip: float = 0.0  # 0 disables
    # lr_g multipliers (ours; 1 as released) for E's FAN (E.model), E's pose and content mappings
    # (E.to_*, E.*_embed), A_sync and V. G keeps lr_g
    lr_mult_fan: float = 1.0
    lr_mult_mappings: float = 1.0
    lr_mult_a: float = 1.0
    lr_mult_v: float = 1.0
    # the last ``decay_steps`` steps lower every lr linearly towards 0 (SPADE's niter_decay; 0: constant)
    decay_steps: int = 0


@dataclass(frozen=True)
class DataSpec:
    root: str = ""
    augment: AugmentConfig = field(default_factory=AugmentConfig)  # what E sees (data.augment.p_crop=0 ...)
    clip_len: int = 1
    samples_per_clip: int = 4
    shift_negatives: int = 2
    # share of references taken from another clip of the same person (0: always the target's own clip,
    # as the official data); a reference whose head pose is the target's lets G copy the pose from it
    reference_other_clip: float = 0.0
    # pose twins (ours, SynthTalk): root of preprocessed `pcavs synth --pose-twins` clips; a share
    # pose_twin_prob of samples show E the twin (another face, same pose and mouth) instead of the target
    pose_twins: str = ""
    pose_twin_prob: float = 0.5
    num_workers: int = 0


@dataclass(frozen=True)
class TrainConfig:
    stage: Stage = "joint"
    model_preset: str = "official"
    model_overrides: tuple[str, ...] = ()
    init_from: str = ""  # weights folder of the previous stage (pcavs or official format)
    out_dir: str = "runs/pcavs"
    steps: int = 1000
    batch_size: int = 8
    seed: int = 0
    precision: Literal["fp32", "bf16"] = "fp32"  # bf16 autocast (GPU); fp32 master weights always
    device: str = "auto"
    log_every: int = 10
    image_every: int = 200
    checkpoint_every: int = 500
    export_every: int = 0  # 0: export inference weights only at the end
    # stages after ``landmarks``: keep the FAN up to its heatmaps as that stage left it (weights and
    # BatchNorm statistics); the sync loss otherwise repurposes the heatmaps (small: 4 -> 18 px error)
    freeze_fan_trunk: bool = False
    generate_from: tuple[str, ...] = ("audio",)  # which content drives G in joint training
    deterministic: bool = False
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataSpec = field(default_factory=DataSpec)

    def validate(self) -> TrainConfig:
        if self.stage not in ("landmarks", "sync", "identity", "joint"):
            raise ConfigError(f"stage must be landmarks, sync, identity or joint, got {self.stage!r}")
        bad = set(self.generate_from) - {"audio", "visual"}
        if bad or not self.generate_from:
            raise ConfigError(f"generate_from must list 'audio' and/or 'visual', got {list(self.generate_from)}")
        if self.batch_size < 2 and self.stage == "sync":
            raise ConfigError("the contrastive sync stage needs batch_size >= 2 (negatives come from the batch)")
        o = self.optim
        if min(o.lr_g, o.lr_d, o.lr_mult_fan, o.lr_mult_mappings, o.lr_mult_a, o.lr_mult_v) < 0:
            raise ConfigError("learning rates and their multipliers (optim.lr_*) must be >= 0")
        if not 0 <= o.decay_steps <= self.steps:
            raise ConfigError(f"optim.decay_steps must be in 0..steps ({self.steps}), got {o.decay_steps}")
        for name in ("heatmaps", "output_geometry"):
            if getattr(self.loss, name) > 0 and not self.freeze_fan_trunk:
                # the term's gradient would otherwise also teach the FAN to see landmarks in fakes
                raise ConfigError(f"loss.{name} needs freeze_fan_trunk=true (the FAN judges, it does not learn)")
        return self


def _stage(stage: Stage, preset: str, **kw) -> TrainConfig:
    return TrainConfig(stage=stage, model_preset=preset, out_dir=f"runs/{preset}-{stage}", **kw)


TRAIN_PRESETS: dict[str, TrainConfig] = {
    # the released architecture at 224 (GPU)
    "official-landmarks": _stage("landmarks", "official", steps=50_000, batch_size=32),
    "official-sync": _stage("sync", "official", steps=100_000, batch_size=32),
    "official-identity": _stage("identity", "official", steps=50_000, batch_size=32),
    "official-joint": _stage("joint", "official", steps=300_000, batch_size=8, precision="bf16"),
    # the 64x64 CPU recipe (SynthTalk); ~28 minutes of training on 2 fast cores, 30 on an idle AVX2-only EPYC
    # (54 on a busier one)
    # The contrastive temperature is 0.1 rather than the paper's 1: with cosine logits in [-1, 1] a
    # temperature of 1 leaves the loss near chance for the few hundred steps a CPU can afford
    # 4000 steps, not 1000: the pose code is read from these heatmaps, and after 1000 steps their arg-max
    # landmarks were worse than the mean face (4.6 vs 2.0 px on training crops; 2.2 after 4000). With
    # them the benchmark's pose error fell 6.65 -> 6.00 deg (pitch 9.3 -> 7.6) and SSIM rose 0.732 -> 0.756
    "small-landmarks": _stage("landmarks", "small", steps=4000, batch_size=16, log_every=20),
    # From sync on the FAN keeps the heatmaps the landmarks stage taught it (trained on, the sync loss
    # repurposes them: landmark error 4 -> 18 px)
    "small-sync": _stage("sync", "small", steps=600, batch_size=16, log_every=20, freeze_fan_trunk=True,
                         loss=LossConfig(sync_temperature=0.1)),
    "small-identity": _stage("identity", "small", steps=300, batch_size=16, log_every=20),
    "small-joint": _stage(
        "joint", "small", steps=3000, batch_size=16, image_every=250, checkpoint_every=250, freeze_fan_trunk=True,
        # Reconstruction only, for the CPU budget. Measured on SynthTalk (benchmarks/synthtalk.py):
        # - with the discriminator on (gan 1 or 0.1) it won within a few hundred steps and G's L1 stalled
        #   at 0.22; a perceptual backbone at 64x64 costs ~10x the small model's own step;
        # - with the sync (x100), cross-modal and identity terms still on, the shared FAN head and the
        #   audio encoder follow them and G ignores the pose code (pose error ratio vs still pose 1.00);
        #   with L1 alone it uses it (0.94) and SSIM rises from 0.56 to 0.63. The encoders were trained
        #   for those terms in their own stages;
        # - E sees the target without the perspective/crop warps: at 64 px the aligned landmarks move
        #   only ~1.6 px (std), which a 20% warp drowns;
        # - one frame per clip (16 identities per batch) and Adam 2e-3 (0.9, 0.99); 6e-3 diverged in a G-only fit;
        # - L1 x20 inside the lip box (loss.mouth): with whole-frame L1 alone the speech was ignored
        #   (mouth error ratio true vs shuffled audio 1.00);
        # - the frozen FAN's heatmaps of the generated frame matched to the real one's (x5) and 1 - SSIM
        #   (x15): SSIM 0.658 -> 0.732, pose error 8.0 -> 6.7 deg. Heatmaps x5 without the SSIM term
        #   diverged (L1 0.9 by step 100); x1 alone moved pose only (8.0 -> 7.3).
        data=DataSpec(samples_per_clip=1, augment=AugmentConfig(p_perspective=0.0, p_crop=0.0)),
        loss=LossConfig(
            gan=0.0, feat=0.0, perceptual="none", sync=0.0, crossmodal=0.0, identity=0.0, sync_temperature=0.1,
            mouth=20.0, heatmaps=5.0, ssim=15.0,
        ),
        # the FAN at a tenth of G's lr: at 2e-3 every ReLU after its heatmaps (conv6) died within the
        # first few hundred steps, the pose code went constant (std 0.000) and G ignored the pose
        # lr to 0 over the last 1000 steps: mouth L1 10.1 -> 9.6, mouth-opening error 0.135 -> 0.103
        optim=OptimConfig(lr_g=2e-3, beta1=0.9, beta2=0.99, amsgrad_g=False, lr_mult_fan=0.1, decay_steps=1000),
    ),
    # unit tests
    "tiny-landmarks": _stage("landmarks", "tiny", steps=2, batch_size=4, log_every=1),
    "tiny-sync": _stage("sync", "tiny", steps=2, batch_size=4, log_every=1),
    "tiny-identity": _stage("identity", "tiny", steps=2, batch_size=4, log_every=1),
    "tiny-joint": _stage("joint", "tiny", steps=2, batch_size=2, log_every=1, loss=LossConfig(perceptual="none")),
}


def train_preset(name: str, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    if name not in TRAIN_PRESETS:
        raise ConfigError(f"unknown training preset {name!r}; choose one of {', '.join(TRAIN_PRESETS)}")
    return apply_overrides(TRAIN_PRESETS[name], overrides).validate()
