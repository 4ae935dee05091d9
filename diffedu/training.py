"""The training loop: eps-prediction on a DDPM schedule or EDM's preconditioned denoiser.  [DDPM Alg. 1; EDM eq. 8]

AdamW with a short linear warm-up, an exponential moving average (EMA) of the weights (what
sampling uses), gradient-norm clipping, mixed precision on CUDA only, a tqdm bar with the loss,
periodic sample grids, and checkpoints from which a killed run resumes bit for bit on the CPU:
every source of randomness (data order, t or sigma, eps) comes from generators whose states are
saved with the weights, so the steps after a resume are the steps the run would have taken.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from torch import nn

from ._checks import check_choice, check_int, check_number
from .checkpoint import Trained, load_checkpoint, save_checkpoint
from .losses import l_simple
from .schedules import Schedule, linear_betas

OBJECTIVES = ("eps", "edm")
CKPT_NAME = "ckpt.pt"


def pick_device(device=None) -> torch.device:
    """`device` if given, else cuda, then mps, then cpu, whichever is available first."""
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


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


def _loss_fn(objective: str, sched: Schedule | None, sigma_data: float):
    if objective == "eps":
        return lambda model, x0, g: l_simple(model, sched, x0, generator=g)
    from .precond import Denoiser, edm_loss  # EDM's preconditioning: c_skip, c_out, c_in, c_noise

    def loss(model, x0, g):
        return edm_loss(Denoiser(model, sigma_data), x0, sigma_data=sigma_data, generator=g)

    return loss


def train(model: nn.Module, data: torch.Tensor, out_dir, *, steps: int, objective: str = "eps", betas=None,
          batch_size: int = 128, lr: float = 2e-4, weight_decay: float = 0.0, warmup: int = 100,
          ema_decay: float = 0.999, grad_clip: float = 1.0, sigma_data: float = 0.5, seed: int = 0,
          ckpt_every: int = 500, sample_every: int = 0, log_every: int = 10, resume: bool = False,
          device=None, progress: bool = True, meta: dict | None = None) -> Trained:
    """Train `model` on `data` (N, ...) for `steps` optimiser steps in total; returns the EMA model.

    objective   "eps": L_simple on the DDPM schedule `betas` (default linear, T = 1000)
                "edm": EDM's loss on Denoiser(model, sigma_data), ln sigma ~ N(-1.2, 1.2^2)
    out_dir     receives ckpt.pt (every `ckpt_every` steps and at the end, written atomically),
                log.jsonl (step, loss, lr, seconds), and samples_STEP.png every `sample_every`
                steps (0: only at the end) drawn from the EMA weights with fixed noise
    model       must have a `.config` (MLP, UNet); its initial weights are the caller's (the CLI seeds them)
    resume      continue from out_dir/ckpt.pt; the model config and the training arguments that
                change the path (objective, batch size, seed, betas, data size) must match
    """
    check_choice(objective, "objective", OBJECTIVES)
    steps = check_int(steps, "steps", lo=1)
    ckpt_every = check_int(ckpt_every, "ckpt_every", lo=1)
    check_number(lr, "lr", lo=0, lo_open=True)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dev = pick_device(device)
    betas = (linear_betas(1000) if betas is None else torch.as_tensor(betas, dtype=torch.float64)) \
        if objective == "eps" else None
    sched = Schedule(betas) if betas is not None else None
    data = data.float()
    run_args = dict(objective=objective, batch_size=int(batch_size), seed=int(seed), n_data=len(data),
                    sigma_data=float(sigma_data) if objective == "edm" else None)
    meta = dict(meta or {}, shape=list(data.shape[1:]), run_args=run_args)

    model = model.to(dev)
    ema = _copy(model)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    use_amp = dev.type == "cuda"
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
    batches = BatchSampler(len(data), batch_size, seed)
    noise_gen = torch.Generator(device=dev).manual_seed(seed + 1)
    step = 0
    ckpt_path = out / CKPT_NAME
    if resume and ckpt_path.exists():
        ck = load_checkpoint(ckpt_path, model_config=model.config)  # on the CPU: RNG states must be
        _check_same(ck["meta"].get("run_args", {}), run_args, ckpt_path)
        if objective == "eps" and not torch.equal(ck["betas"], betas):
            raise ValueError(f"checkpoint {ckpt_path} was trained with a different schedule (betas differ)")
        model.load_state_dict(ck["model"])
        ema.load_state_dict(ck["ema"])
        opt.load_state_dict(ck["optimizer"])
        batches.load_state_dict(ck["rng"]["batches"])
        noise_gen.set_state(ck["rng"]["noise"].to("cpu"))
        torch.set_rng_state(ck["rng"]["torch"])
        if "scaler" in ck:
            scaler.load_state_dict(ck["scaler"])
        step = int(ck["step"])
        print(f"resuming from {ckpt_path} at step {step}", flush=True)
    elif resume:
        print(f"--resume: no checkpoint at {ckpt_path} yet, starting from step 0", flush=True)
    log_path = out / "log.jsonl"
    _truncate_log(log_path, step)

    def checkpoint():
        rng = {"batches": batches.state_dict(), "noise": noise_gen.get_state(), "torch": torch.get_rng_state()}
        extra = {"scaler": scaler.state_dict()} if scaler.is_enabled() else {}
        save_checkpoint(ckpt_path, model=model, ema=ema, optimizer=opt, step=step, objective=objective,
                        betas=betas, sigma_data=sigma_data, rng=rng, meta=meta, **extra)

    loss_fn = _loss_fn(objective, sched, sigma_data)
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=steps, initial=step, desc=f"train {objective}", dynamic_ncols=True)
    t_start, smooth = time.time(), None
    model.train()
    with open(log_path, "a") as log:
        while step < steps:
            x0 = data[batches.next()].to(dev)
            for group in opt.param_groups:
                group["lr"] = lr * min(1.0, (step + 1) / max(warmup, 1))
            with torch.autocast("cuda", dtype=amp_dtype, enabled=use_amp):
                loss = loss_fn(model, x0, noise_gen)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            if grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            scaler.step(opt)
            scaler.update()
            ema_update(ema, model, ema_decay_at(step, ema_decay))
            step += 1
            value = loss.item()
            smooth = value if smooth is None else 0.98 * smooth + 0.02 * value
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{smooth:.4f}")
            if step % log_every == 0 or step == steps:
                log.write(json.dumps({"step": step, "loss": value, "lr": opt.param_groups[0]["lr"],
                                      "seconds": round(time.time() - t_start, 3)}) + "\n")
                log.flush()
            if step % ckpt_every == 0 or step == steps:
                checkpoint()
            if (sample_every and step % sample_every == 0) or step == steps:
                trained = Trained(ema, objective, sched, sigma_data, meta["shape"], meta)
                save_samples(trained, out / f"samples_{step:06d}.png")
    if bar is not None:
        bar.close()
    ema.eval()
    return Trained(ema, objective, sched, sigma_data, meta["shape"], dict(meta, step=step))


def _copy(model: nn.Module) -> nn.Module:
    from .models import build_model

    ema = build_model(model.config).to(next(model.parameters()).device)
    ema.load_state_dict(model.state_dict())
    return ema.eval().requires_grad_(False)


def _check_same(saved: dict, now: dict, path) -> None:
    diff = [f"{k}: checkpoint {saved.get(k)!r}, now {now[k]!r}" for k in now if saved.get(k) != now[k]]
    if diff:
        raise ValueError(f"cannot resume from {path}: the run's arguments changed ({'; '.join(diff)}); "
                         f"use the original arguments or a new --out folder")


def _truncate_log(path: Path, step: int) -> None:
    """Drop log lines past `step` (written after the checkpoint we resume from)."""
    if not path.exists():
        return
    keep = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["step"] <= step]
    path.write_text("".join(line + "\n" for line in keep))


@torch.no_grad()
def save_samples(trained: Trained, path, n: int = 64, seed: int = 0) -> None:
    """A PNG of n samples from `trained` with fixed noise: DDIM 50 (eps) or EDM Heun 18 steps (edm)."""
    sampler, steps = ("ddim", 50) if trained.objective == "eps" else ("edm-heun", 18)
    x = trained.sample(n, sampler=sampler, steps=steps, generator=torch.Generator().manual_seed(seed))
    save_grid(x, path)


def save_grid(x: torch.Tensor, path, nrow: int | None = None, scale: int | None = None) -> None:
    """Images (N, C, H, W) in [-1, 1] -> one PNG grid (nearest-neighbour upscaled to >= 32 px per tile);
    2-D points (N, 2) -> a scatter plot."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    x = x.detach().float().cpu()
    if x.dim() == 2:
        from matplotlib.figure import Figure   # not pyplot: leaves a notebook's backend alone

        fig = Figure(figsize=(4, 4), dpi=100)
        ax = fig.subplots()
        ax.scatter(x[:, 0], x[:, 1], s=2, alpha=0.5)
        ax.set(aspect="equal", xlabel="x_1", ylabel="x_2", title=f"{len(x)} samples")
        fig.savefig(path, bbox_inches="tight")
        return
    from PIL import Image

    from .plotting import image_grid

    scale = scale or max(1, -(-32 // x.shape[-2]))
    img = (image_grid(x, nrow, pad_value=0.0) * 255).round().astype("uint8")
    im = Image.fromarray(img)
    im.resize((im.width * scale, im.height * scale), Image.Resampling.NEAREST).save(path)
