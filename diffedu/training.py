"""The training loop: eps-prediction on a DDPM schedule or EDM's preconditioned denoiser.  [DDPM Alg. 1; EDM eq. 8]

Imports: torch, tqdm, diffedu core maths (schedules, losses, precond), models, io (checkpoint, rundir,
trained) and plotting (the preview grids): it is an app.

`TrainConfig` holds a run's settings, `TrainState` everything that changes while it runs, and
`train` is the loop: AdamW with a short linear warm-up, an exponential moving average (EMA) of the
weights (what sampling uses), gradient-norm clipping, mixed precision on CUDA only, a tqdm bar with
the loss, periodic sample grids, and checkpoints from which a killed run resumes bit for bit on the
CPU: every source of randomness (data order, t or sigma, eps) comes from generators whose states
`TrainState` saves with the weights, so the steps after a resume are the steps the run would have taken.

Nothing is lost and nothing fails silently (`diffedu.rundir` keeps the folder): a folder that holds a
run is continued (resume) or replaced (overwrite) only when asked, two runs never share one, a
diverging loss stops the run at its step with the last good checkpoint kept, and a resume on other
data than the checkpoint's is refused.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, fields, replace
from functools import partial
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from ._checks import check_choice, check_finite, check_int, check_number
from .checkpoint import load_checkpoint, save_checkpoint
from .losses import l_simple
from .models import build_model
from .plotting import save_grid
from .precond import Denoiser, edm_loss
from .rundir import CKPT_NAME, LOG_NAME, data_fingerprint, fingerprint_diff, is_complete_png, notice, open_run, trim_log
from .schedules import Schedule, linear_betas
from .trained import Trained

OBJECTIVES = ("eps", "edm")


class TrainingDiverged(RuntimeError):
    """The loss or the weights stopped being finite; the last good checkpoint was kept."""


@dataclass
class TrainConfig:
    """A run's settings: what `train` needs besides the model, the data and the schedule's betas.

    lr and batch_size are DDPM's CIFAR-10 values [DDPM App. B]; its EMA decay (0.9999) and its code's
    warm-up (5000 steps) are shortened here for runs of thousands, not hundreds of thousands, of steps.
    """

    steps: int                   # total optimiser steps (a resumed run stops here too)
    objective: str = "eps"       # "eps": L_simple on the DDPM schedule [DDPM eq. 14]; "edm": EDM's loss [EDM eq. 8]
    batch_size: int = 128        # minibatch size, capped at the data size; an epoch drops the remainder
    lr: float = 2e-4             # AdamW learning rate after the warm-up
    weight_decay: float = 0.0    # AdamW's decoupled weight decay
    warmup: int = 100            # steps of linear learning-rate warm-up (0: none)
    ema_decay: float = 0.999     # decay of the EMA of the weights that sampling uses
    grad_clip: float = 1.0       # clip the gradient's global norm to this (0: no clipping)
    sigma_data: float = 0.5      # edm: the data's standard deviation [EDM Tab. 1]
    label_dropout: float = 0.1   # with labels: the share of each batch trained as the null class [CFG §3.2]
    seed: int = 0                # seeds data order (seed) and t/sigma, eps (seed + 1): same seed, same run
    ckpt_every: int = 500        # write ckpt.pt every this many steps, and at the end
    sample_every: int = 0        # write samples_STEP.png every this many steps (0: only at the end)
    log_every: int = 10          # write a log.jsonl line every this many steps, and at the end
    device: str | None = None    # "cuda" | "mps" | "cpu"; None: the first available (`pick_device`)
    progress: bool = True        # show a tqdm bar with the smoothed loss

    def __post_init__(self):
        self.steps = check_int(self.steps, "steps", lo=1)
        check_choice(self.objective, "objective", OBJECTIVES)
        self.batch_size = check_int(self.batch_size, "batch_size", lo=1)
        self.lr = check_number(self.lr, "lr", lo=0, lo_open=True, hi=math.inf, hi_open=True)
        self.weight_decay = check_number(self.weight_decay, "weight_decay", lo=0, hi=math.inf, hi_open=True)
        self.warmup = check_int(self.warmup, "warmup", lo=0)
        self.ema_decay = check_number(self.ema_decay, "ema_decay", lo=0, hi=1)
        self.grad_clip = check_number(self.grad_clip, "grad_clip", lo=0, hi=math.inf, hi_open=True)
        self.label_dropout = check_number(self.label_dropout, "label_dropout", lo=0, hi=1, hi_open=True)
        self.sigma_data = check_number(self.sigma_data, "sigma_data", lo=0, lo_open=True, hi=math.inf, hi_open=True)
        self.seed = check_int(self.seed, "seed", lo=0, hi=2**63 - 2)   # seed + 1 seeds the noise
        self.ckpt_every = check_int(self.ckpt_every, "ckpt_every", lo=1)
        self.sample_every = check_int(self.sample_every, "sample_every", lo=0)
        self.log_every = check_int(self.log_every, "log_every", lo=1)
        if self.device is not None:
            try:
                torch.device(self.device)
            except (RuntimeError, TypeError):
                raise ValueError(f"device must be a torch device such as 'cuda', 'mps' or 'cpu', or None "
                                 f"(the first available); got {self.device!r}") from None
        check_choice(self.progress, "progress", (True, False))

    def run_args(self, n_data: int) -> dict:
        """The settings that decide which steps the run takes, so a resume must match them (meta["run_args"])."""
        return dict(objective=self.objective, batch_size=self.batch_size, seed=self.seed, n_data=int(n_data),
                    sigma_data=self.sigma_data if self.objective == "edm" else None)


def pick_device(device=None) -> torch.device:
    """`device` if given and available here, else cuda, then mps, then cpu, whichever is available first.

    ValueError naming the device and listing the available ones for a name torch does not know
    ("gpu") or a device this machine lacks ("cuda" without CUDA, "cuda:3" with one GPU).
    """
    if device is None:
        return torch.device(available_devices()[0])
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be a torch device such as 'cuda', 'mps' or 'cpu', or None (the first "
                         f"available); got {device!r}; available here: {', '.join(available_devices())}") from None
    here = available_devices()
    if dev.type != "cpu" and str(dev) not in here and not (dev.index is None and dev.type in here):
        raise ValueError(f"device {device!r} is not available on this machine; available here: {', '.join(here)}")
    return dev


def available_devices() -> list[str]:
    """The devices torch can use here, the preferred first: cuda, cuda:0.., mps, cpu."""
    names = []
    if torch.cuda.is_available():
        names += ["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        names.append("mps")
    return names + ["cpu"]


class BatchSampler:
    """Minibatch indices: a fresh seeded permutation each epoch, cut into batches (the remainder dropped).

    Its whole state (generator, current permutation, position) goes into the checkpoint.
    """

    def __init__(self, n: int, batch_size: int, seed: int):
        self.n, self.batch_size = n, min(batch_size, n)
        self.gen = torch.Generator().manual_seed(seed)
        self.perm, self.pos = torch.randperm(n, generator=self.gen), 0

    def next(self) -> torch.Tensor:
        if self.pos + self.batch_size > self.n:
            self.perm, self.pos = torch.randperm(self.n, generator=self.gen), 0
        idx = self.perm[self.pos:self.pos + self.batch_size]
        self.pos += self.batch_size
        return idx

    def state_dict(self) -> dict:
        return {"gen": self.gen.get_state(), "perm": self.perm.clone(), "pos": self.pos}

    def load_state_dict(self, state: dict) -> None:
        self.gen.set_state(state["gen"])
        self.perm, self.pos = state["perm"].clone(), int(state["pos"])


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """theta_ema <- decay theta_ema + (1 - decay) theta, for every parameter and buffer."""
    for e, p in zip(ema.state_dict().values(), model.state_dict().values()):
        if e.is_floating_point():
            e.lerp_(p, 1 - decay)
        else:
            e.copy_(p)


def ema_decay_at(step: int, decay: float) -> float:
    """min(decay, (1 + step) / (10 + step)): the EMA follows the weights closely early on."""
    return min(decay, (1 + step) / (10 + step))


def lr_at(step: int, config: TrainConfig) -> float:
    """The learning rate of step `step` (from 0): lr (step + 1) / warmup during the warm-up, then lr."""
    return config.lr * min(1.0, (step + 1) / max(config.warmup, 1))


@dataclass
class TrainState:
    """Everything that changes while a run trains: the one description of what a checkpoint holds.

    model, ema          the network being trained and the EMA of its weights
    optimizer, scaler   AdamW's moments and the fp16 loss scale (saved only when enabled, i.e. CUDA fp16)
    batches, noise      the data order and the generator of t (or sigma) and eps
    step                optimiser steps taken
    The global torch RNG state is saved with them, for whatever draws from it (dropout, say).
    """

    model: nn.Module
    ema: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    batches: BatchSampler
    noise: torch.Generator
    step: int = 0

    @classmethod
    def start(cls, model: nn.Module, config: TrainConfig, n_data: int) -> TrainState:
        """Step 0 of a run: the EMA starts as a copy of the model's (the caller's) initial weights."""
        dev = next(model.parameters()).device
        ema = build_model(model.config).to(dev)
        ema.load_state_dict(model.state_dict())
        optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype(dev) == torch.float16)
        return cls(model, ema.eval().requires_grad_(False), optimizer, scaler,
                   BatchSampler(n_data, config.batch_size, config.seed),
                   torch.Generator(device=dev).manual_seed(config.seed + 1))

    def save(self, path, config: TrainConfig, betas, meta: dict) -> None:
        """Write the state with the run's objective, schedule and metadata as a checkpoint (atomically)."""
        rng = {"batches": self.batches.state_dict(), "noise": self.noise.get_state(), "torch": torch.get_rng_state()}
        extra = {"scaler": self.scaler.state_dict()} if self.scaler.is_enabled() else {}
        save_checkpoint(path, model=self.model, ema=self.ema, optimizer=self.optimizer, step=self.step,
                        objective=config.objective, betas=betas, sigma_data=config.sigma_data, rng=rng, meta=meta,
                        **extra)

    def load(self, path, *, run_args: dict, betas, data: dict | None = None) -> None:
        """Restore the state saved at `path`, refusing a checkpoint of another model, run, schedule or
        data (`data`: the `data_fingerprint` of what this run trains on)."""
        ck = load_checkpoint(path, model_config=self.model.config)  # on the CPU: RNG states must be
        if data is not None:
            _check_same_data(ck["meta"].get("data_fingerprint"), data, path)
        _check_same(ck["meta"].get("run_args", {}), run_args, path)
        if betas is not None and not torch.equal(ck["betas"], betas):
            raise ValueError(f"checkpoint {path} was trained with a different schedule (betas differ)")
        self.model.load_state_dict(ck["model"])
        self.ema.load_state_dict(ck["ema"])
        self.optimizer.load_state_dict(ck["optimizer"])
        self.batches.load_state_dict(ck["rng"]["batches"])
        self.noise.set_state(ck["rng"]["noise"].to("cpu"))
        torch.set_rng_state(ck["rng"]["torch"])
        if "scaler" in ck:
            self.scaler.load_state_dict(ck["scaler"])
        self.step = int(ck["step"])


def amp_dtype(dev: torch.device) -> torch.dtype | None:
    """The autocast dtype: bfloat16 (or float16 where unsupported) on CUDA, None (full precision) elsewhere."""
    if dev.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def train(model: nn.Module, data: torch.Tensor, out_dir, config: TrainConfig | None = None, *, betas=None,
          labels: torch.Tensor | None = None, resume: bool = False, overwrite: bool = False, meta: dict | None = None,
          **overrides) -> Trained:
    """Train `model` on `data` (N, ...) for `config.steps` optimiser steps in total; returns the EMA model.

    config      a TrainConfig; keyword `overrides` replace its fields, or build it when config is None:
                train(model, data, out, steps=600, lr=1e-3) == train(model, data, out, TrainConfig(600, lr=1e-3))
    betas       the DDPM schedule of objective "eps" (default linear, T = 1000); edm ignores it
    out_dir     receives ckpt.pt (every `ckpt_every` steps and at the end, written atomically),
                log.jsonl (step, loss, lr, seconds), and samples_STEP.png every `sample_every`
                steps (0: only at the end) drawn from the EMA weights with fixed noise; locked
                (out_dir/.lock) while the run writes, so a second run into it is refused
    model       must have a `.config` (MLP, UNet); its initial weights are the caller's (the CLI seeds them)
    labels      class labels (N,) int64 for a class-conditional model (`UNet(num_classes=K)`): each batch
                trains eps(x_t, t, c), with a share `config.label_dropout` of its labels replaced by the
                null class, so the one network is also the unconditional model of classifier-free
                guidance [CFG §3.2, Alg. 1]; None for an unconditional model
    resume      continue from out_dir/ckpt.pt; the model config, the schedule, the data (its
                fingerprint) and the settings that change the path (`TrainConfig.run_args`: objective,
                batch size, seed, data size) must match.  A finished run writes a missing final grid.
    overwrite   replace the run already in out_dir (its checkpoint, log and grids are removed);
                without resume or overwrite, an out_dir that holds a run is refused
    meta        extra metadata for the checkpoint (e.g. meta["data"], the data's name or folder)

    A loss or weights that stop being finite raise TrainingDiverged naming the step; the last good
    checkpoint stays in place.
    """
    config = _configure(config, overrides)
    check_choice(resume, "resume", (True, False))
    check_choice(overwrite, "overwrite", (True, False))
    check_finite(data, "data")
    dev = pick_device(config.device)
    data = data.float()
    betas = _betas(config.objective, betas)
    sched = Schedule(betas) if betas is not None else None
    labels = _check_labels(labels, model, len(data))
    run_args = config.run_args(len(data))
    if labels is not None:   # unconditional runs keep the run_args they always had (old checkpoints resume)
        run_args.update(label_dropout=config.label_dropout, num_classes=model.num_classes,
                        labels=data_fingerprint(labels)["sha256"])
    meta = dict(meta or {}, shape=list(data.shape[1:]), run_args=run_args,
                data_fingerprint=data_fingerprint(data, (meta or {}).get("data")))
    with open_run(out_dir, resume=resume, overwrite=overwrite) as out:
        state = TrainState.start(model.to(dev), config, len(data))
        ckpt_path = out / CKPT_NAME
        if resume:
            _resume(state, ckpt_path, meta, betas)
        if state.step > config.steps:
            notice(f"{ckpt_path} is at step {state.step}, past steps={config.steps}: nothing to train")
        if state.step and _due(state.step, config.sample_every, config.steps):
            _samples_if_missing(state, config, sched, meta, out)   # the grid of a run killed after its checkpoint
        _loop(state, config, data, labels, sched, betas, meta, out, dev)
    return _trained(state, config, sched, dict(meta, step=state.step))


def _check_labels(labels, model: nn.Module, n: int) -> torch.Tensor | None:
    """labels (n,) int64 in 0..K-1 for a K-class model; None for an unconditional one (either mismatch: ValueError)."""
    num_classes = getattr(model, "num_classes", None)
    if labels is None:
        return None
    if num_classes is None:
        raise ValueError("labels were given but the model is unconditional: build it with num_classes "
                         "(UNet(..., num_classes=K)) or train without labels")
    if not isinstance(labels, torch.Tensor) or labels.dtype != torch.long or labels.shape != (n,):
        what = f"{labels.dtype} of shape {tuple(labels.shape)}" if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise ValueError(f"labels must be an int64 tensor of shape ({n},), one per training image; got {what}")
    lo, hi = torch.stack(torch.aminmax(labels)).tolist()
    if lo < 0 or hi >= num_classes:
        raise ValueError(f"labels must be classes in 0..{num_classes - 1} for a {num_classes}-class model, "
                         f"got values in {lo}..{hi}")
    return labels


def _batch_labels(labels: torch.Tensor | None, idx: torch.Tensor, state: TrainState, p: float, dev) -> torch.Tensor | None:
    """The batch's labels, each replaced by the null class with probability p (drawn from the run's noise generator)."""
    if labels is None:
        return None
    c = labels[idx].to(dev)
    drop = torch.rand(c.shape, generator=state.noise, device=dev) < p
    return torch.where(drop, torch.full_like(c, state.model.null_class), c)


def _loop(state: TrainState, config: TrainConfig, data: torch.Tensor, labels: torch.Tensor | None,
          sched: Schedule | None, betas, meta: dict, out: Path, dev: torch.device) -> None:
    """The optimiser steps from state.step to config.steps, with the log, checkpoints and grids."""
    loss_fn = _loss_fn(config.objective, sched, config.sigma_data)
    autocast = _autocast(dev)
    saved = state.step                                                # the step of the checkpoint on disk
    state.model.train()
    with _Log(out / LOG_NAME, state.step, config) as log:
        while state.step < config.steps:                              # [DDPM Alg. 1]
            idx = state.batches.next()
            x0 = data[idx].to(dev)                                    # x_0 ~ q(x_0): the next minibatch  (l. 2)
            c = _batch_labels(labels, idx, state, config.label_dropout, dev)   # c, or the null class  [CFG Alg. 1]
            net = state.model if c is None else partial(state.model, c=c)
            with autocast():
                loss = loss_fn(net, x0, state.noise)                  # t (or sigma), eps ~ N(0, I)  (l. 3-4)
            value = loss.item()
            if not math.isfinite(value):                              # a NaN step would poison the weights
                raise _diverged(state.step + 1, f"the loss is {value}", out / CKPT_NAME, saved, config)
            _descend(state, loss, lr_at(state.step, config), config.grad_clip)   # gradient step  (l. 5)
            ema_update(state.ema, state.model, ema_decay_at(state.step, config.ema_decay))
            state.step += 1
            log(state.step, value, state.optimizer.param_groups[0]["lr"])
            if _due(state.step, config.ckpt_every, config.steps):
                bad = _non_finite(state)
                if bad:
                    raise _diverged(state.step, f"{bad} hold NaN or inf", out / CKPT_NAME, saved, config)
                state.save(out / CKPT_NAME, config, betas, meta)
                saved = state.step
            if _due(state.step, config.sample_every, config.steps):
                save_samples(_trained(state, config, sched, meta), out / f"samples_{state.step:06d}.png")


def _non_finite(state: TrainState) -> str:
    """'the weights (3 tensors)' or 'the EMA weights (...)' that are not finite; '' when all are."""
    bad = []
    for what, module in (("the weights", state.model), ("the EMA weights", state.ema)):
        names = [k for k, v in module.state_dict().items()
                 if v.is_floating_point() and not bool(torch.isfinite(v).all())]
        if names:
            bad.append(f"{what} ({len(names)} tensors, e.g. {names[0]})")
    return " and ".join(bad)


def _diverged(step: int, what: str, ckpt: Path, saved: int, config: TrainConfig) -> TrainingDiverged:
    kept = f"the last good checkpoint {ckpt} (step {saved}) is kept" if saved else "no checkpoint was written"
    return TrainingDiverged(f"training diverged at step {step}: {what}; stopped, {kept}. Try a smaller lr "
                            f"(now {config.lr:g}) or grad_clip (now {config.grad_clip:g}), or check the data")


def _samples_if_missing(state: TrainState, config: TrainConfig, sched: Schedule | None, meta: dict, out: Path) -> None:
    path = out / f"samples_{state.step:06d}.png"
    if not is_complete_png(path):
        save_samples(_trained(state, config, sched, meta), path)
        notice(f"wrote {path}, the sample grid of step {state.step} that the interrupted run did not write")


def _configure(config: TrainConfig | None, overrides: dict) -> TrainConfig:
    """`config` with the keyword overrides replacing its fields (TrainConfig(**overrides) if None), validated."""
    names = [f.name for f in fields(TrainConfig)]
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        raise ValueError(f"train() got unknown keyword argument(s) {', '.join(unknown)}; besides betas, resume "
                         f"and meta it takes TrainConfig's fields: {', '.join(names)}")
    if config is None:
        return TrainConfig(**overrides)
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig or None, got {type(config).__name__}")
    return replace(config, **overrides)


def _betas(objective: str, betas) -> torch.Tensor | None:
    """The schedule of an eps run as float64 (default: linear, T = 1000); None for edm, which has none."""
    if objective != "eps":
        return None
    return linear_betas(1000) if betas is None else torch.as_tensor(betas, dtype=torch.float64)


def _autocast(dev: torch.device):
    """A factory of autocast contexts: mixed precision (`amp_dtype`) on CUDA, a no-op elsewhere."""
    dtype = amp_dtype(dev)
    return partial(torch.autocast, "cuda", dtype=dtype or torch.float16, enabled=dtype is not None)


def _resume(state: TrainState, path: Path, meta: dict, betas) -> None:
    if path.exists():
        state.load(path, run_args=meta["run_args"], betas=betas, data=meta["data_fingerprint"])
        print(f"resuming from {path} at step {state.step}", flush=True)
    else:
        print(f"--resume: no checkpoint at {path} yet, starting from step 0", flush=True)


def _loss_fn(objective: str, sched: Schedule | None, sigma_data: float):
    """loss(model, x0, generator): L_simple [DDPM eq. 14] or EDM's loss on Denoiser(model) [EDM eq. 8]."""
    if objective == "eps":
        return lambda model, x0, g: l_simple(model, sched, x0, generator=g)
    return lambda model, x0, g: edm_loss(Denoiser(model, sigma_data), x0, sigma_data=sigma_data, generator=g)


def _descend(state: TrainState, loss: torch.Tensor, lr: float, grad_clip: float) -> None:
    """One AdamW step at learning rate `lr` on the gradient of `loss`, its norm clipped to `grad_clip` (0: off)."""
    for group in state.optimizer.param_groups:
        group["lr"] = lr
    state.optimizer.zero_grad(set_to_none=True)
    state.scaler.scale(loss).backward()
    state.scaler.unscale_(state.optimizer)
    if grad_clip:
        nn.utils.clip_grad_norm_(state.model.parameters(), grad_clip)
    state.scaler.step(state.optimizer)
    state.scaler.update()


def _due(step: int, every: int, last: int) -> bool:
    """Every `every` steps (0: never), and at the last step."""
    return step == last or (every > 0 and step % every == 0)


def _trained(state: TrainState, config: TrainConfig, sched: Schedule | None, meta: dict) -> Trained:
    """The EMA model as a `Trained`: what the preview grids sample from and what `train` returns."""
    return Trained(state.ema.eval(), config.objective, sched, config.sigma_data, meta["shape"], meta)


class _Log:
    """log.jsonl, a line (step, loss, lr, seconds) every `log_every` steps and at the end, and the tqdm
    bar with the smoothed loss.  Opening it drops the lines past `step`, written after the checkpoint
    a run resumes from."""

    def __init__(self, path: Path, step: int, config: TrainConfig):
        trim_log(path, step)
        self.file = open(path, "a")
        self.every, self.last = config.log_every, config.steps
        self.bar = tqdm(total=config.steps, initial=step, desc=f"train {config.objective}", dynamic_ncols=True,
                        disable=not config.progress)
        self.t_start, self.smooth = time.time(), None

    def __call__(self, step: int, loss: float, lr: float) -> None:
        self.smooth = loss if self.smooth is None else 0.98 * self.smooth + 0.02 * loss
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{self.smooth:.4f}")
        if _due(step, self.every, self.last):
            self.file.write(json.dumps({"step": step, "loss": loss, "lr": lr,
                                        "seconds": round(time.time() - self.t_start, 3)}) + "\n")
            self.file.flush()

    def __enter__(self) -> _Log:
        return self

    def __exit__(self, *exc) -> None:
        self.bar.close()
        self.file.close()


def _check_same_data(saved: dict | None, now: dict, path) -> None:
    """Refuse to resume on other data than the checkpoint's (checkpoints older than the fingerprint pass)."""
    if saved is None:
        notice(f"{path} records no fingerprint of its data (an older checkpoint): "
               f"not checking that the data are the same")
        return
    diff = fingerprint_diff(saved, now)
    if diff:
        raise ValueError(f"cannot resume from {path}: the data changed ({'; '.join(diff)}); resume with the "
                         f"original data (--data) or train into a new out folder")
    if saved.get("source") != now["source"]:
        notice(f"the data's source changed ({saved.get('source')!r} -> {now['source']!r}) but the data are the same")


def _check_same(saved: dict, now: dict, path) -> None:
    diff = [f"{k}: checkpoint {saved.get(k)!r}, now {now[k]!r}" for k in now if saved.get(k) != now[k]]
    if diff:
        raise ValueError(f"cannot resume from {path}: the run's arguments changed ({'; '.join(diff)}); "
                         f"use the original arguments or a new --out folder")


@torch.no_grad()
def save_samples(trained: Trained, path, n: int = 64, seed: int = 0) -> None:
    """A PNG of n samples from `trained` with fixed noise: DDIM 50 (eps) or EDM Heun 18 steps (edm)."""
    sampler, steps = ("ddim", 50) if trained.objective == "eps" else ("edm-heun", 18)
    k = trained.num_classes
    labels = None if k is None else torch.arange(n) % k             # a class-conditional model: class i mod K
    x = trained.sample(n, sampler=sampler, steps=steps, labels=labels, generator=torch.Generator().manual_seed(seed))
    save_grid(x, path)
