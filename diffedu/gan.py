"""Train the course's GAN baseline, a DCGAN on 28x28 digits, and ship its generator.  [DCGAN §3-4]

The homework compares diffusion samplers with a GAN: one network call per image against DDPM's
1000.  `train_gan` alternates one discriminator and one generator step (Alg. 1 of Goodfellow et al.
2014, with k = 1) on the non-saturating loss, with Adam at DCGAN's settings (lr 2e-4, beta_1 0.5
[DCGAN §4]), and keeps its folder the way the diffusion training does (`diffedu.rundir.open_run`):

    OUT/ckpt.pt            both networks, both Adam states, the step, the RNG states, the configs and
                           the SHA-256 fingerprint of the data; every `ckpt_every` steps and at the end,
                           written atomically, read back with torch.load(weights_only=True) only
    OUT/log.jsonl          step, d_loss, g_loss, seconds: every 50 steps and at the end
    OUT/samples_STEP.png   64 samples from the same fixed z, every `sample_every` steps and at the end

Every random draw comes from two seeded CPU generators, both saved in the checkpoint: the data order
(`seed`) and the noise (`seed + 1`: first the initial weights, then every z), so a killed run resumed
with resume=True takes the very steps it would have taken (bit for bit on the CPU).  A folder holding
a run is refused without resume or overwrite, a resume on other data or arguments is refused naming
what changed, and a loss that stops being finite raises TrainingDiverged (a RuntimeError) naming the
step, with the last good checkpoint kept.  `export_generator` writes the generator as .safetensors,
`load_generator` reads it back.

Imports: json, math, time, torch, tqdm, _checks, models (the DCGAN nets), io (checkpoint's atomic
writes and .safetensors helpers, rundir), plotting, and training's BatchSampler, pick_device,
TrainingDiverged, its schedule test `_due` and its resume checks: an app.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ._checks import all_finite, check_choice, check_finite, check_int, check_number
from .assets import asset_path
from .checkpoint import _check_zip, _first_line, _metadata, _read_safetensors, _save_safetensors, _write_atomic
from .checkpoint import model_for_weights
from .models.gan import Discriminator, Generator, dcgan_init_
from .plotting import save_grid
from .rundir import CKPT_NAME, LOG_NAME, data_fingerprint, is_complete_png, notice, open_run, trim_log
from .training import BatchSampler, TrainingDiverged, _check_same, _check_same_data, _due, pick_device

CKPT_FORMAT, EXPORT_FORMAT, VERSION = "diffedu-gan-checkpoint", "diffedu-gan", 1
REQUIRED = ("format", "version", "step", "generator", "discriminator", "generator_config", "discriminator_config",
            "opt_g", "opt_d", "rng", "run_args", "data_fingerprint")
LOG_EVERY = 50
GRID_N, GRID_SEED = 64, 0   # the grids' fixed z: the same 64 draws in every run, at every step


def discriminator_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    """-log D(x) - log(1 - D(G(z))), D = sigmoid(logit): D's side of the game (Goodfellow et al. 2014, eq. 1).

    Binary cross-entropy on the logits: real images labelled 1, generated ones 0.
    """
    return (F.binary_cross_entropy_with_logits(logits_real, torch.ones_like(logits_real))
            + F.binary_cross_entropy_with_logits(logits_fake, torch.zeros_like(logits_fake)))


def generator_loss(logits_fake: torch.Tensor) -> torch.Tensor:
    """-log D(G(z)): the non-saturating generator loss (Goodfellow et al. 2014, §3).

    The minimax game's log(1 - D(G(z))) is flat where D confidently rejects G's images, early in
    training; -log D(G(z)) has the same fixed point and strong gradients there.
    """
    return F.binary_cross_entropy_with_logits(logits_fake, torch.ones_like(logits_fake))


@dataclass
class GANState:
    """Everything that changes while a GAN trains, i.e. what ckpt.pt holds besides the run's arguments."""

    G: Generator
    D: Discriminator
    opt_g: torch.optim.Adam
    opt_d: torch.optim.Adam
    batches: BatchSampler        # the data order (seed)
    noise: torch.Generator       # the initial weights, then every z (seed + 1)
    step: int = 0

    @classmethod
    def start(cls, n_data: int, batch_size: int, lr: float, betas, z_dim: int, width: int, seed: int, dev) -> GANState:
        """Step 0: both networks built without touching the global RNG and initialised from the noise generator."""
        noise = torch.Generator().manual_seed(seed + 1)
        with torch.device("meta"):
            G, D = Generator(z_dim, width), Discriminator(width)
        G, D = (dcgan_init_(net.to_empty(device=dev), noise).train() for net in (G, D))
        return cls(G, D, torch.optim.Adam(G.parameters(), lr=lr, betas=betas),
                   torch.optim.Adam(D.parameters(), lr=lr, betas=betas), BatchSampler(n_data, batch_size, seed), noise)

    def step_on(self, real: torch.Tensor) -> tuple[float, float]:
        """One discriminator step, then one generator step on the same z; returns (d_loss, g_loss)."""
        z = torch.randn((len(real), self.G.config["z_dim"]), generator=self.noise).to(real.device)   # z ~ N(0, I)
        fake = self.G(z)
        d_loss = discriminator_loss(self.D(real), self.D(fake.detach()))     # ascend log D(x) + log(1 - D(G(z)))
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()
        self.D.requires_grad_(False)                                         # G's step moves only G
        g_loss = generator_loss(self.D(fake))                                # ascend log D(G(z))
        self.D.requires_grad_(True)
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        return d_loss.item(), g_loss.item()

    def save(self, path: Path, run_args: dict, fingerprint: dict) -> None:
        """Write ckpt.pt atomically: tensors, dicts, lists, numbers and strings only (weights_only loads it)."""
        state = dict(format=CKPT_FORMAT, version=VERSION, step=self.step,
                     generator=self.G.state_dict(), discriminator=self.D.state_dict(),
                     generator_config=dict(self.G.config), discriminator_config=dict(self.D.config),
                     opt_g=self.opt_g.state_dict(), opt_d=self.opt_d.state_dict(),
                     rng={"batches": self.batches.state_dict(), "noise": self.noise.get_state()},
                     run_args=run_args, data_fingerprint=fingerprint)
        _write_atomic(path, lambda tmp: torch.save(state, tmp))

    def load(self, ck: dict) -> None:
        self.G.load_state_dict(ck["generator"])
        self.D.load_state_dict(ck["discriminator"])
        self.opt_g.load_state_dict(ck["opt_g"])
        self.opt_d.load_state_dict(ck["opt_d"])
        self.batches.load_state_dict(ck["rng"]["batches"])
        self.noise.set_state(ck["rng"]["noise"])
        self.step = int(ck["step"])

    def non_finite(self) -> list[str]:
        """Names of the weights (of G or D) that hold NaN or inf."""
        return [f"{who}.{k}" for who, net in (("G", self.G), ("D", self.D)) for k, v in net.state_dict().items()
                if v.is_floating_point() and not all_finite(v)]


def train_gan(data: torch.Tensor, out_dir, steps: int, *, batch_size: int = 64, lr: float = 2e-4, betas=(0.5, 0.999),
              z_dim: int = 64, width: int = 64, seed: int = 0, ckpt_every: int = 250, sample_every: int = 1000,
              resume: bool = False, overwrite: bool = False, progress: bool = True, device=None) -> Generator:
    """Train a DCGAN on images `data` (N, 1, 28, 28) in [-1, 1] for `steps` steps in total; returns G (eval mode).

    Each step takes a batch of `batch_size` real images (a seeded permutation per epoch), one Adam
    step of D on discriminator_loss and one of G on generator_loss.  The files in `out_dir`, the
    resume and the refusals are described in the module docstring; resume needs the same data,
    batch_size, lr, betas, z_dim, width and seed (a larger `steps` continues a finished run).
    sample_every=0 writes a grid only at the end.  device: None is the first available (cuda, mps, cpu).
    """
    steps = check_int(steps, "steps", lo=1)
    batch_size = check_int(batch_size, "batch_size", lo=1)
    lr = check_number(lr, "lr", lo=0, lo_open=True, hi=math.inf, hi_open=True)
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"betas must be a pair (beta_1, beta_2) of numbers in [0, 1), got {betas!r}")
    betas = tuple(check_number(b, f"betas[{i}]", lo=0, hi=1, hi_open=True) for i, b in enumerate(betas))
    with torch.device("meta"):
        Generator(z_dim, width)   # checks z_dim and width (ValueError naming them) before anything is written
    seed = check_int(seed, "seed", lo=0, hi=2**63 - 2)   # seed + 1 seeds the noise
    ckpt_every = check_int(ckpt_every, "ckpt_every", lo=1)
    sample_every = check_int(sample_every, "sample_every", lo=0)
    for name, flag in (("resume", resume), ("overwrite", overwrite), ("progress", progress)):
        check_choice(flag, name, (True, False))
    dev = pick_device(device)
    data = _check_data(data)
    run_args = dict(batch_size=batch_size, lr=lr, betas=list(betas), z_dim=z_dim, width=width, seed=seed, n_data=len(data))
    fingerprint = data_fingerprint(data)
    data = data.to(dev)
    with open_run(out_dir, resume=resume, overwrite=overwrite) as out:
        st = GANState.start(len(data), batch_size, lr, betas, z_dim, width, seed, dev)
        ckpt = out / CKPT_NAME
        if resume:
            _resume(st, ckpt, run_args, fingerprint)
        if st.step > steps:
            notice(f"{ckpt} is at step {st.step}, past steps={steps}: nothing to train")

        def grid():   # G(z) for the fixed z; G's RNG streams and batch-norm statistics are left alone
            save_grid(st.G.sample(GRID_N, torch.Generator().manual_seed(GRID_SEED)), out / f"samples_{st.step:06d}.png")

        if st.step and _due(st.step, sample_every, steps) and not is_complete_png(out / f"samples_{st.step:06d}.png"):
            grid()                                      # the grid of a run killed after its checkpoint
        saved, t0 = st.step, time.time()
        trim_log(out / LOG_NAME, st.step)               # the lines past the checkpoint go
        with open(out / LOG_NAME, "a") as log, tqdm(total=steps, initial=min(st.step, steps), desc="train gan",
                                                    dynamic_ncols=True, disable=not progress) as bar:
            while st.step < steps:
                d_loss, g_loss = st.step_on(data[st.batches.next().to(dev)])
                st.step += 1
                bad = [f"the {who} loss is {v}" for who, v in (("discriminator", d_loss), ("generator", g_loss))
                       if not math.isfinite(v)]
                if bad:
                    raise _diverged(st.step, " and ".join(bad), ckpt, saved, lr)
                bar.update(1)
                bar.set_postfix(d_loss=f"{d_loss:.3f}", g_loss=f"{g_loss:.3f}")
                if _due(st.step, LOG_EVERY, steps):
                    log.write(json.dumps({"step": st.step, "d_loss": d_loss, "g_loss": g_loss,
                                          "seconds": round(time.time() - t0, 3)}) + "\n")
                    log.flush()
                if _due(st.step, ckpt_every, steps):
                    names = st.non_finite()
                    if names:
                        raise _diverged(st.step, f"{len(names)} weight tensors (e.g. {names[0]}) hold NaN or inf",
                                        ckpt, saved, lr)
                    st.save(ckpt, run_args, fingerprint)
                    saved = st.step
                if _due(st.step, sample_every, steps):
                    grid()
    return st.G.eval()


def _check_data(data) -> torch.Tensor:
    """data as float32 images (N, 1, 28, 28), finite and in [-1, 1] (the range of G's tanh)."""
    if not isinstance(data, torch.Tensor) or data.dim() != 4 or tuple(data.shape[1:]) != (1, 28, 28) or not len(data):
        what = tuple(data.shape) if isinstance(data, torch.Tensor) else type(data).__name__
        raise ValueError(f"data must be a tensor of images (N, 1, 28, 28), e.g. diffedu.data.mnist('train')[0]; "
                         f"got {what}")
    check_finite(data, "data")
    data = data.float()
    lo, hi = torch.stack(torch.aminmax(data)).tolist()
    if lo < -1 - 1e-6 or hi > 1 + 1e-6:
        raise ValueError(f"data must be in [-1, 1] (the generator's tanh range), got values in [{lo:g}, {hi:g}]")
    return data


def _diverged(step: int, what: str, ckpt: Path, saved: int, lr: float) -> TrainingDiverged:
    kept = f"the last good checkpoint {ckpt} (step {saved}) is kept" if saved else "no checkpoint was written"
    return TrainingDiverged(f"GAN training diverged at step {step}: {what}; stopped, {kept}. Try a smaller lr "
                            f"(now {lr:g}) or check the data")


def _resume(st: GANState, path: Path, run_args: dict, fingerprint: dict) -> None:
    """Continue from `path`, refusing a checkpoint of other data or other run arguments (naming what changed)."""
    if not path.exists():
        print(f"resume: no checkpoint at {path} yet, starting from step 0", flush=True)
        return
    ck = load_gan_checkpoint(path)
    _check_same_data(ck["data_fingerprint"], fingerprint, path)   # the diffusion training's checks and messages
    _check_same(ck["run_args"], run_args, path)
    st.load(ck)
    print(f"resuming from {path} at step {st.step}", flush=True)


def load_gan_checkpoint(path) -> dict:
    """Read a ckpt.pt of `train_gan` (zip CRC-32s checked, then torch.load(weights_only=True)); ValueError
    naming the file if it is missing, truncated, corrupt, incomplete or not a GAN checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"GAN checkpoint {str(path)!r} does not exist")
    _check_zip(path)
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # zip errors, unpickling errors, EOF: all mean "not a readable checkpoint"
        raise ValueError(f"GAN checkpoint {str(path)!r} is truncated or corrupt (torch.load failed: "
                         f"{_first_line(err)})") from None
    if not isinstance(ck, dict) or ck.get("format") != CKPT_FORMAT:
        raise ValueError(f"{str(path)!r} is not a diffedu GAN checkpoint (no format tag {CKPT_FORMAT!r}); "
                         f"train-gan writes them")
    missing = [k for k in REQUIRED if k not in ck]
    if missing:
        raise ValueError(f"GAN checkpoint {str(path)!r} is incomplete: missing {', '.join(missing)}")
    if ck["version"] != VERSION:
        raise ValueError(f"GAN checkpoint {str(path)!r} has format version {ck['version']}, this diffedu reads {VERSION}")
    return ck


def export_generator(ckpt_path, out_path) -> Path:
    """Write the generator of a `train_gan` checkpoint as .safetensors (float32), its config and run in the metadata."""
    ck = load_gan_checkpoint(ckpt_path)
    G = model_for_weights(ckpt_path, ck["generator_config"], ck["generator"])   # the weights fit their config
    meta = {"format": EXPORT_FORMAT, "version": str(VERSION), "model_config": json.dumps(G.config),
            "meta": json.dumps({"step": ck["step"], "run_args": ck["run_args"],
                                "data_fingerprint": ck["data_fingerprint"]})}
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    return _save_safetensors({k: v.float() if v.is_floating_point() else v for k, v in G.state_dict().items()},
                             out_path, meta)


def load_generator(path, device="cpu") -> Generator:
    """The Generator (eval mode, `.meta` = step and run) of an `export_generator` file, or of a ckpt.pt.

    A missing, truncated or damaged file (a recorded SHA-256 differs), another kind of file, or weights
    that do not fit their config are a ValueError naming the file.
    """
    path = Path(path)
    if path.suffix == ".pt":
        ck = load_gan_checkpoint(path)
        config, weights, meta = ck["generator_config"], ck["generator"], {"step": ck["step"], "run_args": ck["run_args"]}
    else:
        md, weights = _read_safetensors(path, "GAN generator", EXPORT_FORMAT)
        config, meta = _metadata(path, md, "model_config"), _metadata(path, md, "meta")
    if not isinstance(config, dict) or config.get("kind") != "gan_generator":
        raise ValueError(f"{str(path)!r}: model_config must describe a 'gan_generator', got {config!r}")
    G = model_for_weights(path, config, weights, device)
    G.meta = meta
    return G


def load_mnist_gan(device="cpu", root=None) -> Generator:
    """The shipped MNIST DCGAN generator (eval mode), hash-checked against diffedu/shipped/manifest.json; `.sample(n, generator)`."""
    return load_generator(asset_path("mnist_gan.safetensors", root), device=device)
