"""The training loop: named phases, checkpoints, resume, logging, export.

One step of stage ``joint`` is a G step (:class:`GeneratorPhase`) then a D step
(:class:`DiscriminatorPhase`) on the frames the G step generated; stages ``sync`` and ``identity``
have a single phase. State is saved atomically every ``checkpoint_every`` steps and on SIGTERM,
and a run restarted with the same ``out_dir`` resumes exactly where it stopped.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from tqdm import tqdm

from pcavs.checkpoint import export_official, load_model, save_weights
from pcavs.config import ConfigError, preset, to_dict
from pcavs.data.batch import Batch
from pcavs.losses import weighted_sum
from pcavs.model import INFERENCE_NETWORKS, PCAVS
from pcavs.train.config import TrainConfig
from pcavs.train.distributed import DistInfo, any_rank, average_scalars, barrier, gather_objects, wrap
from pcavs.train.phases import DiscriminatorPhase
from pcavs.train.stages import STAGES, lr_multipliers, trainable_parameters
from pcavs.train.state import Position, load_state, rng_state, save_state

BatchSource = Callable[[Position], Iterator[tuple[int, int, Batch]]]


class Trainer:
    """Builds the model and phases for one stage and runs it."""

    def __init__(self, cfg: TrainConfig, data: BatchSource, info: DistInfo | None = None) -> None:
        self.cfg = cfg
        self.info = info or DistInfo()
        self.data = data
        self.out = Path(cfg.out_dir)
        torch.manual_seed(cfg.seed)  # identical initial weights on every rank
        self.spec = STAGES[cfg.stage]
        model_cfg = preset(cfg.model_preset, cfg.model_overrides)
        self.model = PCAVS(model_cfg, with_discriminator=self.spec.discriminator)
        if cfg.init_from:
            self._init_from(cfg.init_from)
        self.model.to(self.info.device).train()
        self.trainable = trainable_parameters(self.model, cfg.stage, cfg.freeze_fan_trunk)
        for name, p in self.model.named_parameters():
            p.requires_grad_(name in self.trainable)
        if cfg.freeze_fan_trunk:  # frozen means frozen: its BatchNorms keep their statistics too
            self.model.E.model.trunk_eval()
        self._build_phases()
        self.position = Position()
        self._stop_requested = False
        self.writer: Any = None

    # --- construction ---------------------------------------------------------------------
    def _init_from(self, folder: str) -> None:
        prev = load_model(folder)
        if prev.cfg != self.model.cfg:
            raise ConfigError(
                f"{folder}: weights are for preset {prev.cfg.name!r} but this run uses {self.model.cfg.name!r}; "
                "init_from must be the previous stage of the same preset"
            )
        for name in INFERENCE_NETWORKS:
            getattr(self.model, name).load_state_dict(getattr(prev, name).state_dict(), strict=True)

    def _build_phases(self) -> None:
        cfg, info, opt = self.cfg, self.info, self.cfg.optim
        named = dict(self.model.named_parameters())
        d_names = {n for n, _ in self.model.D.named_parameters(prefix="D")} if self.spec.discriminator else set()
        mult = lr_multipliers(self.model, opt)
        groups: dict[float, list[torch.nn.Parameter]] = {}
        for n in sorted(self.trainable - d_names):
            groups.setdefault(opt.lr_g * mult[n], []).append(named[n])
        # one group per distinct lr, in a fixed order, so a saved optimizer state loads back
        param_groups = [{"params": ps, "lr": lr, "base_lr": lr} for lr, ps in sorted(groups.items(), reverse=True)]
        self.optimizers: dict[str, torch.optim.Optimizer] = {
            "G": torch.optim.Adam(param_groups, lr=opt.lr_g, betas=(opt.beta1, opt.beta2), amsgrad=opt.amsgrad_g)
        }
        self.phase = wrap(self.spec.phase(self.model, cfg, info.device), info)
        self.d_params: list[torch.nn.Parameter] = []
        if self.spec.discriminator:
            self.d_phase = wrap(DiscriminatorPhase(self.model.D, cfg.loss), info)
            self.d_params = [named[n] for n in sorted(self.trainable & d_names)]  # frozen in the G step
            self.optimizers["D"] = torch.optim.Adam(
                [{"params": self.d_params, "lr": opt.lr_d, "base_lr": opt.lr_d}], lr=opt.lr_d,
                betas=(opt.beta1, opt.beta2),
            )  # fmt: skip

    # --- one step -------------------------------------------------------------------------
    def _autocast(self):
        if self.cfg.precision == "bf16":
            return torch.autocast(self.info.device.type, dtype=torch.bfloat16)
        return nullcontext()

    def _update(self, name: str, loss: Tensor) -> None:
        opt = self.optimizers[name]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.optim.grad_clip > 0:
            params = [p for g in opt.param_groups for p in g["params"]]
            torch.nn.utils.clip_grad_norm_(params, self.cfg.optim.grad_clip)
        opt.step()

    def lr_factor(self, step: int) -> float:
        """Multiplier of every base lr at 0-based ``step``: 1, then linear towards 0 over ``decay_steps``."""
        decay, total = self.cfg.optim.decay_steps, self.cfg.steps
        return 1.0 if decay == 0 else min(1.0, (total - step) / decay)

    def step(self, batch: Batch) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """One optimisation step of the stage: the G phase, then the D phase when the stage has one.
        Returns the scalars to log (detached, still on the device) and the images."""
        factor = self.lr_factor(self.position.step)
        for opt in self.optimizers.values():
            for group in opt.param_groups:
                group["lr"] = group["base_lr"] * factor
        for p in self.d_params:  # G step: D judges but is not updated
            p.requires_grad_(False)
        with self._autocast():
            terms, outputs = self.phase(batch)
        total, logs = weighted_sum(terms, "loss_g")
        self._update("G", total)
        for p in self.d_params:
            p.requires_grad_(True)
        if not self.spec.discriminator or self.cfg.loss.gan == 0:  # no adversarial term: D has nothing to learn
            return logs, outputs
        real = batch["frames"].reshape(-1, *batch["frames"].shape[2:])
        fake = torch.cat([outputs[f"fake_{s}"].detach() for s in self.cfg.generate_from])
        real = real.repeat(len(self.cfg.generate_from), 1, 1, 1)
        with self._autocast():
            d_terms, _ = self.d_phase(real, fake)
        d_total, d_logs = weighted_sum(d_terms, "loss_d")
        self._update("D", d_total)
        logs.update(d_logs)
        return logs, outputs

    # --- the loop -------------------------------------------------------------------------
    def resume(self) -> bool:
        found = load_state(self.out, self.model, self.optimizers, map_location=self.info.device,
                           rank=self.info.rank, world_size=self.info.world_size)  # fmt: skip
        if found is None:
            return False
        self.position, saved = found
        changed = _diff(saved, self.resolved_config())
        if changed and self.info.is_main:
            # a resumed run keeps its weights and optimiser state; say what the new command changed
            print(f"warning: resuming {self.out} with a changed config: {', '.join(changed[:8])}", flush=True)
        return True

    def save(self) -> None:
        rngs = gather_objects(rng_state(self.info.device), self.info) if self.info.distributed else None
        if self.info.is_main:
            save_state(self.out, self.model, self.optimizers, self.position, self.resolved_config(), rank_rngs=rngs)
        barrier(self.info)

    def export(self) -> None:
        if not self.info.is_main:
            return
        extra = {"trained": {"stage": self.cfg.stage, "step": self.position.step}}
        save_weights(self.model, self.out / "weights", extra=extra)
        export_official(self.model, self.out / "official")

    def resolved_config(self) -> dict[str, Any]:
        return {"train": to_dict(self.cfg), "model": to_dict(self.model.cfg)}

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        self._stop_requested = True

    def _should_stop(self) -> bool:
        """Whether a SIGTERM asks to stop now. It reaches torchrun's ranks at slightly different moments,
        so they agree by a collective; that is one host sync, done only at logging steps (which sync
        anyway) so that every rank checks at the same steps and a GPU is not stalled every step."""
        if self.info.distributed and self.position.step % self.cfg.log_every:
            return False
        return any_rank(self._stop_requested, self.info)

    def run(self, max_steps_this_run: int | None = None, progress: bool = True) -> Position:
        """Train until ``cfg.steps`` (or ``max_steps_this_run`` more steps); resumes automatically."""
        cfg, info = self.cfg, self.info
        self.out.mkdir(parents=True, exist_ok=True)
        resumed = self.resume()
        if info.is_main:
            (self.out / "config.json").write_text(json.dumps(self.resolved_config(), indent=2) + "\n")
            self._open_writer()
        previous = signal.getsignal(signal.SIGTERM)
        try:
            signal.signal(signal.SIGTERM, self._on_sigterm)
        except ValueError:  # not the main thread: no signal handling
            previous = None
        start = self.position.step
        stop = cfg.steps if max_steps_this_run is None else min(cfg.steps, start + max_steps_this_run)
        bar = tqdm(total=cfg.steps, initial=start, disable=not (progress and info.is_main), desc=cfg.stage,
                   dynamic_ncols=True)  # fmt: skip
        if resumed and info.is_main:
            bar.write(f"resumed {self.out} at step {start}")
        batches = self.data(self.position)
        try:
            t0, seen = time.perf_counter(), 0
            while self.position.step < stop and not self._should_stop():
                epoch, index, batch = next(batches)
                batch = {k: v.to(info.device, non_blocking=True) for k, v in batch.items()}
                logs, outputs = self.step(batch)
                self.position.step += 1
                self.position.epoch, self.position.batch_in_epoch = epoch, index + 1
                seen += batch["frames"].shape[0] * batch["frames"].shape[1] * info.world_size
                step = self.position.step
                if step % cfg.log_every == 0 or step == stop:
                    logs = average_scalars(logs, info)
                    logs["images_per_s"] = seen / max(time.perf_counter() - t0, 1e-9)
                    t0, seen = time.perf_counter(), 0
                    self._log(step, logs, bar)
                if cfg.image_every and step % cfg.image_every == 0 and outputs and info.is_main:
                    self._log_images(step, batch, outputs)
                if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
                    self.save()
                if cfg.export_every and step % cfg.export_every == 0:
                    self.export()
                bar.update(1)
            self.save()
            if self.position.step >= cfg.steps:
                self.export()
        finally:
            bar.close()
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
            if self.writer is not None:
                self.writer.flush()
        return self.position

    # --- logging --------------------------------------------------------------------------
    def _open_writer(self) -> None:
        if self.writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.out / "tb"))

    def _log(self, step: int, logs: dict[str, float], bar: tqdm) -> None:
        if not self.info.is_main:
            return
        for k, v in logs.items():
            self.writer.add_scalar(f"{self.cfg.stage}/{k}", v, step)
        with (self.out / "log.jsonl").open("a") as f:
            f.write(json.dumps({"step": step, **logs}) + "\n")
        shown = {k: logs[k] for k in ("loss_g", "loss_d", "images_per_s") if k in logs}
        bar.set_postfix({k: f"{v:.3g}" for k, v in shown.items()})

    def _log_images(self, step: int, batch: Batch, outputs: dict[str, Tensor]) -> None:
        fakes = [v for k, v in outputs.items() if k.startswith("fake_")]
        if not fakes:
            return
        n = min(4, batch["reference"].shape[0])
        k = batch["frames"].shape[1]
        rows = [
            batch["reference"][:n],
            batch["augmented"][:n, 0],  # the pose source the non-identity encoder saw
            *[f.view(-1, k, *f.shape[1:])[:n, 0] for f in fakes],
            batch["frames"][:n, 0],
        ]
        grid = torch.cat([torch.cat(list(r), dim=2) for r in rows], dim=1)  # (3, rows*S, n*S)
        self.writer.add_image(f"{self.cfg.stage}/reference|pose|generated|target", (grid.clamp(-1, 1) + 1) / 2, step)


def _diff(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested config dicts."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _diff(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}={b!r} (was {a!r})")
    return out
