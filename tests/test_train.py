"""Training: one-step smoke per stage, loss falls on one clip, exact resume, 2-process gloo DDP."""

from __future__ import annotations

import pytest
import torch

from pcavs.train.config import train_preset
from pcavs.train.loop import Trainer
from pcavs.train.state import Position


def random_batches(cfg, clips: int = 4, seed: int = 0):
    """A deterministic source: batch ``i`` of epoch ``e`` depends only on (seed, e, i)."""
    from pcavs.config import preset

    model_cfg = preset(cfg.model_preset, cfg.model_overrides)
    s, b, k = model_cfg.image_size, cfg.batch_size, cfg.data.clip_len

    def source(pos: Position):
        epoch, index = pos.epoch, pos.batch_in_epoch
        while True:
            g = torch.Generator().manual_seed(seed * 1_000_003 + epoch * 1009 + index)
            frames = torch.rand(b, k, 3, s, s, generator=g) * 2 - 1
            yield epoch, index, {
                "frames": frames,
                "augmented": frames.flip(-1),
                "reference": torch.rand(b, 3, s, s, generator=g) * 2 - 1,
                "mel": torch.rand(b, k, 1, 80, 20, generator=g),
                "mel_shifted": torch.rand(b, k, 2, 1, 80, 20, generator=g),
                "label": torch.randint(0, clips, (b,), generator=g),
                "landmarks": torch.rand(b, k, 68, 2, generator=g) * s,
            }
            index += 1
            if index == 5:
                epoch, index = epoch + 1, 0

    return source


def test_one_step_each_stage(tmp_path):
    for name in ("tiny-landmarks", "tiny-sync", "tiny-identity", "tiny-joint"):
        cfg = train_preset(name, [f"out_dir={tmp_path / name}", "steps=1"])
        trainer = Trainer(cfg, random_batches(cfg))
        before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
        trainer.run(progress=False)
        changed = {n for n, p in trainer.model.named_parameters() if not torch.equal(p, before[n])}
        assert changed and changed <= trainer.trainable, name
        frozen_changed = {n for n in changed if n not in trainer.trainable}
        assert not frozen_changed
        log = (tmp_path / name / "log.jsonl").read_text()
        assert "loss_g" in log
        assert (tmp_path / name / "weights" / "model.safetensors").exists()
        assert (tmp_path / name / "official" / "latest_net_G.pth").exists()
        assert (tmp_path / name / "config.json").exists()


def _weights(trainer):
    return {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


def test_resume_gives_identical_weights(tmp_path):
    # with per-network learning rates: the optimizer's parameter groups must load back as saved
    # and the lr decay, which must pick up where it stopped
    overrides = ["steps=6", "checkpoint_every=0", "log_every=2", "optim.lr_mult_fan=0.5", "optim.lr_mult_a=0.25",
                 "optim.decay_steps=3"]  # fmt: skip
    straight = train_preset("tiny-joint", [f"out_dir={tmp_path / 'a'}", *overrides])
    a = Trainer(straight, random_batches(straight))
    a.run(progress=False)

    split = train_preset("tiny-joint", [f"out_dir={tmp_path / 'b'}", *overrides])
    first = Trainer(split, random_batches(split))
    first.run(max_steps_this_run=4, progress=False)  # stops and saves, as on SIGTERM
    assert first.position.step == 4
    torch.manual_seed(12345)  # a different process state must not matter
    second = Trainer(split, random_batches(split))
    second.run(progress=False)
    assert second.position.step == 6
    wa, wb = _weights(a), _weights(second)
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa), [k for k in wa if not torch.equal(wa[k], wb[k])][:5]
    # and the run did move the weights
    fresh = Trainer(straight, random_batches(straight))
    assert any(not torch.equal(wa[k], v) for k, v in _weights(fresh).items())


# the second case turns terms off as small-joint does: V's classifier and E's visual-content mapping then
# get no gradient, which DDP must be told to expect (it stopped at the second step before)
@pytest.mark.parametrize("terms_off", [False, True], ids=["all_terms", "identity_and_sync_off"])
def test_two_process_gloo_ddp(tmp_path, terms_off):
    """torchrun with 2 CPU processes: ranks see disjoint samples and end with identical weights."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from pcavs.data.synthetic import write_synthetic_dataset

    data = write_synthetic_dataset(tmp_path / "data", num_clips=8, frames=20, size=32)
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    worker = Path(__file__).parent / "ddp_worker.py"
    off = ["loss.identity=0", "loss.sync=0", "loss.crossmodal=0"] if terms_off else []
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(worker),
           str(data), str(out), *off]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["weights"] == ranks[1]["weights"]
    s0 = {tuple(x) for batch in ranks[0]["samples"] for x in batch}
    s1 = {tuple(x) for batch in ranks[1]["samples"] for x in batch}
    assert s0 and s1 and not (s0 & s1)
    assert (out / "weights" / "model.safetensors").exists()
    # a classifier no term uses stays as it was, as in one process
    assert [r["classifier_moved"] for r in ranks] == [not terms_off] * 2


def test_loss_falls_on_one_clip(tmp_path):
    """A few dozen joint steps on one tiny clip: reconstruction (L1) goes down clearly.

    The adversarial weight is lowered so the check measures the reconstruction path (at full weight,
    40 steps of a fresh discriminator make the curve noisy)."""
    import json

    from pcavs.data.synthetic import write_synthetic_dataset

    data = write_synthetic_dataset(tmp_path / "data", num_clips=2, frames=12, size=32, labels=1)
    cfg = train_preset("tiny-joint", [f"data.root={data}", f"out_dir={tmp_path / 'run'}", "steps=40", "log_every=1",
                                      "data.samples_per_clip=16", "checkpoint_every=0", "optim.lr_g=0.003",
                                      "loss.gan=0.1"])  # fmt: skip
    from pcavs.train.data import batch_source
    from pcavs.train.distributed import DistInfo

    Trainer(cfg, batch_source(cfg, DistInfo())).run(progress=False)
    rows = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    first = sum(r["l1"] for r in rows[:5]) / 5
    last = sum(r["l1"] for r in rows[-5:]) / 5
    assert last < 0.7 * first, (first, last)


def test_landmarks_stage_trains_only_the_fan_up_to_its_heatmaps(tmp_path):
    cfg = train_preset("tiny-landmarks", [f"out_dir={tmp_path}", "steps=1"])
    trainer = Trainer(cfg, random_batches(cfg))
    assert trainer.trainable and all(n.startswith("E.model.") for n in trainer.trainable)
    assert not any(n.startswith(("E.model.fc.", "E.model.conv6.", "E.model.bn5.")) for n in trainer.trainable)
    batch = next(random_batches(cfg)(Position()))[2]
    del batch["landmarks"]
    try:
        trainer.step(batch)
    except ValueError as exc:
        assert "pcavs preprocess" in str(exc)
    else:
        raise AssertionError("a batch without landmarks must be refused")


def test_augmentation_overrides_reach_the_dataset():
    from pcavs.train.data import data_config

    cfg = train_preset("tiny-joint", ["data.augment.p_crop=0", "data.augment.perspective_max=0.1"])
    aug = data_config(cfg).augment
    assert aug.p_crop == 0.0 and aug.perspective_max == 0.1 and aug.p_color == 1.0


def _fan_trunk_names(trainer) -> set[str]:
    head = ("E.model.fc.", "E.model.conv6.", "E.model.bn5.")
    return {n for n, _ in trainer.model.named_parameters() if n.startswith("E.model.") and not n.startswith(head)}


def test_frozen_fan_trunk_keeps_weights_and_batchnorm_statistics(tmp_path):
    cfg = train_preset("tiny-joint", [f"out_dir={tmp_path}", "steps=1", "freeze_fan_trunk=true"])
    trainer = Trainer(cfg, random_batches(cfg))
    trunk = _fan_trunk_names(trainer)
    assert trunk and not trunk & trainer.trainable
    assert {"E.model.fc.weight", "E.model.conv6.weight", "E.to_headpose.0.weight"} <= trainer.trainable
    fan = trainer.model.E.model
    stats = {k: v.clone() for k, v in fan.state_dict().items() if "running" in k and not k.startswith("bn5.")}
    trainer.run(progress=False)
    assert all(torch.equal(fan.state_dict()[k], v) for k, v in stats.items()), "the frozen trunk's BN stats moved"
    assert not fan.bn1.training and fan.bn5.training


def test_keep_landmarks_term_in_sync_and_joint_and_its_refusal(tmp_path):
    import pytest

    for name in ("tiny-sync", "tiny-joint"):
        cfg = train_preset(name, [f"out_dir={tmp_path / name}", "steps=1", "loss.keep_landmarks=2"])
        trainer = Trainer(cfg, random_batches(cfg))
        batch = next(random_batches(cfg)(Position()))[2]
        logs, _ = trainer.step(batch)
        assert logs["keep_landmarks"] > 0, name
        del batch["landmarks"]
        with pytest.raises(ValueError, match="keep_landmarks.*pcavs preprocess"):
            trainer.step(batch)



def test_mouth_term_in_joint_and_its_refusal(tmp_path):
    import pytest

    cfg = train_preset("tiny-joint", [f"out_dir={tmp_path}", "steps=1", "loss.mouth=5"])
    trainer = Trainer(cfg, random_batches(cfg))
    batch = next(random_batches(cfg)(Position()))[2]
    logs, _ = trainer.step(batch)
    assert logs["mouth"] > 0 and logs["loss_g"] > 5 * logs["mouth"]
    del batch["landmarks"]
    with pytest.raises(ValueError, match="loss.mouth.*pcavs preprocess"):
        trainer.step(batch)


def test_pose_geometry_term_reaches_the_pose_mappings_and_its_refusal(tmp_path):
    import pytest

    cfg = train_preset("tiny-joint", [f"out_dir={tmp_path}", "steps=1", "batch_size=3", "loss.pose_geometry=4",
                                      "loss.gan=0", "loss.feat=0", "loss.l1=0", "loss.vgg=0", "loss.sync=0",
                                      "loss.crossmodal=0", "loss.identity=0"])  # fmt: skip
    trainer = Trainer(cfg, random_batches(cfg))
    batch = next(random_batches(cfg)(Position()))[2]
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    logs, _ = trainer.step(batch)
    geometry = float(logs["pose_geometry"])
    assert 0 < geometry <= 2 and float(logs["loss_g"]) == pytest.approx(4 * geometry, rel=1e-5)
    changed = {n for n, p in trainer.model.named_parameters() if not torch.equal(p, before[n])}
    # the only G-side term left: it moves the pose mappings, never G's synthesis
    assert any(n.startswith("E.headpose_embed.") for n in changed)
    assert not any(n.startswith(("G.", "V.", "A_sync.")) for n in changed)
    del batch["landmarks"]
    with pytest.raises(ValueError, match="loss.pose_geometry.*pcavs preprocess"):
        trainer.step(batch)


def test_heatmap_and_ssim_terms_leave_the_fan_trunk_alone(tmp_path):
    import pytest

    from pcavs.config import ConfigError
    from pcavs.train.stages import fan_trunk

    overrides = [f"out_dir={tmp_path}", "steps=1", "loss.heatmaps=2", "loss.ssim=3", "freeze_fan_trunk=true"]
    cfg = train_preset("tiny-joint", overrides)
    trainer = Trainer(cfg, random_batches(cfg))
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    logs, _ = trainer.step(next(random_batches(cfg)(Position()))[2])
    assert logs["heatmaps"] > 0 and 0 < logs["ssim"] <= 1
    changed = {n for n, p in trainer.model.named_parameters() if not torch.equal(p, before[n])}
    trunk = {id(p) for m in fan_trunk(trainer.model) for p in m.parameters()}
    # the FAN judges the generated frame: its trunk gets no update, G does
    assert not {n for n, p in trainer.model.named_parameters() if n in changed and id(p) in trunk}
    assert trunk and any(n.startswith("G.") for n in changed)
    with pytest.raises(ConfigError, match="freeze_fan_trunk"):
        train_preset("tiny-joint", [f"out_dir={tmp_path}", "loss.heatmaps=1"])


def test_per_network_learning_rates(tmp_path):
    import pytest

    from pcavs.config import ConfigError

    overrides = [f"out_dir={tmp_path}", "steps=1", "optim.lr_mult_fan=0.1", "optim.lr_mult_mappings=0.5",
                 "optim.lr_mult_v=0"]  # fmt: skip
    cfg = train_preset("tiny-joint", overrides)
    trainer = Trainer(cfg, random_batches(cfg))
    lr = cfg.optim.lr_g
    names = {id(p): n for n, p in trainer.model.named_parameters()}
    groups = {g["lr"]: {names[id(p)] for p in g["params"]} for g in trainer.optimizers["G"].param_groups}
    assert sorted(groups) == pytest.approx([0.0, 0.1 * lr, 0.5 * lr, lr])
    low, fan, mappings, full = (groups[k] for k in sorted(groups))
    assert {n.split(".")[0] for n in low} == {"V"}
    assert all(n.startswith("E.model.") for n in fan) and "E.model.conv6.weight" in fan
    assert all(n.startswith("E.") and not n.startswith("E.model.") for n in mappings) and mappings
    assert {n.split(".")[0] for n in full} == {"G", "A_sync"}
    v_before = {n: p.detach().clone() for n, p in trainer.model.V.named_parameters()}
    trainer.run(progress=False)
    assert all(torch.equal(p, v_before[n]) for n, p in trainer.model.V.named_parameters())  # lr 0: frozen
    with pytest.raises(ConfigError, match="optim.lr_"):
        train_preset("tiny-joint", ["optim.lr_mult_a=-1"])


def test_linear_lr_decay_over_the_last_steps(tmp_path):
    import pytest

    from pcavs.config import ConfigError

    cfg = train_preset("tiny-joint", [f"out_dir={tmp_path}", "steps=10", "optim.decay_steps=4", "optim.lr_mult_v=0.5"])
    trainer = Trainer(cfg, random_batches(cfg))
    assert [trainer.lr_factor(s) for s in range(10)] == [1] * 7 + [0.75, 0.5, 0.25]
    trainer.run(max_steps_this_run=8, progress=False)  # the 8th step (index 7) ran at 0.75
    lrs = sorted(g["lr"] for g in trainer.optimizers["G"].param_groups)
    assert lrs == pytest.approx([0.75 * 0.5 * cfg.optim.lr_g, 0.75 * cfg.optim.lr_g])
    assert trainer.optimizers["D"].param_groups[0]["lr"] == pytest.approx(0.75 * cfg.optim.lr_d)
    with pytest.raises(ConfigError, match="decay_steps must be in 0..steps"):
        train_preset("tiny-joint", ["steps=10", "optim.decay_steps=11"])


def test_resume_mid_epoch_on_real_loader_is_exact(tmp_path):
    """Issue 24: the DataLoader drew its base seed from the global torch RNG when a resumed run restarted
    mid-epoch, shifting every later random draw; with the real data path the resumed weights must match."""
    from pcavs.data.synthetic import write_synthetic_dataset
    from pcavs.train.data import batch_source
    from pcavs.train.distributed import DistInfo

    data = write_synthetic_dataset(tmp_path / "data", num_clips=8, frames=20, size=32)
    overrides = [f"data.root={data}", "steps=5", "checkpoint_every=0", "log_every=5"]
    straight = train_preset("tiny-joint", [f"out_dir={tmp_path / 'a'}", *overrides])
    a = Trainer(straight, batch_source(straight, DistInfo()))
    a.run(progress=False)
    split = train_preset("tiny-joint", [f"out_dir={tmp_path / 'b'}", *overrides])
    Trainer(split, batch_source(split, DistInfo())).run(max_steps_this_run=2, progress=False)
    second = Trainer(split, batch_source(split, DistInfo()))
    second.run(progress=False)
    wa, wb = _weights(a), _weights(second)
    bad = [k for k in wa if not torch.equal(wa[k], wb[k])]
    assert not bad, (len(bad), max((wa[k] - wb[k]).abs().max().item() for k in bad))


def test_stage_table_trains_the_documented_modules():
    """pcavs.train.stages names modules by handle; the parameter counts per stage are pinned (they
    equal the name-prefix rules they replaced, checked on the tiny, small and official presets)."""
    from pcavs.config import preset
    from pcavs.model import PCAVS
    from pcavs.train.stages import STAGES, trainable_parameters

    model = PCAVS(preset("tiny"), with_discriminator=True)
    counts = {(s, f): len(trainable_parameters(model, s, f)) for s in STAGES for f in (False, True)}
    assert counts == {("landmarks", False): 115, ("landmarks", True): 115, ("sync", False): 186, ("sync", True): 71,
                      ("identity", False): 53, ("identity", True): 53, ("joint", False): 312, ("joint", True): 197}
    joint = trainable_parameters(model, "joint")
    assert {n for n, _ in model.D.named_parameters(prefix="D")} <= joint
    assert not any(n.startswith(("E.classifier.", "A_sync.fc.")) for n in joint)  # heads no loss reaches


def test_every_loss_term_is_weighted_by_its_config_key(tmp_path):
    """Each term names the LossConfig field that weights it (sync_v2a and sync_a2v: ``sync``)."""
    import dataclasses

    from pcavs.train.config import LossConfig

    overrides = [f"out_dir={tmp_path}", "steps=1", "loss.mouth=2", "loss.heatmaps=3", "loss.ssim=4",
                 "loss.keep_landmarks=5", "loss.pose_geometry=6", "loss.output_geometry=7", "batch_size=3",
                 "freeze_fan_trunk=true"]  # fmt: skip
    cfg = train_preset("tiny-joint", overrides)
    trainer = Trainer(cfg, random_batches(cfg))
    batch = next(random_batches(cfg)(Position()))[2]
    terms, outputs = trainer.phase(batch)
    real = batch["frames"].flatten(0, 1)
    d_terms, _ = trainer.d_phase(real, outputs["fake_audio"])
    fields = {f.name for f in dataclasses.fields(LossConfig) if f.type in ("float", float)}
    seen = set()
    for t in [*terms, *d_terms]:
        assert t.key in fields and t.weight == getattr(cfg.loss, t.key), t
        seen.add(t.key)
    assert seen == fields - {"landmarks", "landmark_sigma", "sync_temperature"}  # all a joint step can use
    assert {t.name for t in terms if t.key == "sync"} == {"sync_v2a", "sync_a2v"}


def test_output_geometry_term_moves_g_not_the_fan(tmp_path):
    from pcavs.config import ConfigError
    from pcavs.train.stages import fan_trunk

    overrides = [f"out_dir={tmp_path}", "steps=1", "batch_size=3", "loss.output_geometry=2", "freeze_fan_trunk=true",
                 "loss.gan=0", "loss.feat=0", "loss.l1=0", "loss.vgg=0", "loss.sync=0", "loss.crossmodal=0",
                 "loss.identity=0"]  # fmt: skip
    cfg = train_preset("tiny-joint", overrides)
    trainer = Trainer(cfg, random_batches(cfg))
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    logs, _ = trainer.step(next(random_batches(cfg)(Position()))[2])
    geometry = float(logs["output_geometry"])
    assert geometry > 0 and float(logs["loss_g"]) == pytest.approx(2 * geometry, rel=1e-5)
    assert "heatmaps" not in logs  # the heatmaps are computed for this term; their own term stays off
    changed = {n for n, p in trainer.model.named_parameters() if not torch.equal(p, before[n])}
    trunk = {id(p) for m in fan_trunk(trainer.model) for p in m.parameters()}
    assert any(n.startswith("G.") for n in changed)
    assert not {n for n, p in trainer.model.named_parameters() if n in changed and id(p) in trunk}
    with pytest.raises(ConfigError, match="loss.output_geometry needs freeze_fan_trunk"):
        train_preset("tiny-joint", [f"out_dir={tmp_path}", "loss.output_geometry=1"])
