"""The command line: `python -m diffedu {train, sample, evaluate, export, train-classifier, train-gan, export-gan} --help`.

`--sampler` takes the keys of the sampler registry (`diffedu.samplers.SAMPLERS`).  Every failure the
user can fix (a bad value, a missing or corrupt file, a full disk, a device this machine lacks) is
one line `error: ...` naming the option and the path, with exit code 2; anything else is a bug and
keeps its traceback.  Outputs never replace the input, nor an existing file without --overwrite.

Imports: every layer (the command line is an app): data, models, io, training, metrics, plotting.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

import torch
from safetensors import SafetensorError

from ._version import __version__
from .checkpoint import export_model, load_model, save_classifier
from .course import KERNEL, copy_notebooks, install_kernel
from .data import TOY_SETS, digits, load_training_data, mnist
from .gan import export_generator, train_gan

LABELLED = ("digits", "mnist")   # data sets with class labels: --conditional
from .metrics import evaluate_sampler
from .models import MLP, UNet
from .models.classifier import train_classifier
from .plotting import save_grid
from .samplers import SAMPLERS
from .sampling import generate
from .training import TrainConfig, pick_device, train

EPILOG = """\
examples (each command has its own --help):
  # the course's notebooks into a folder of your own, then open them
  diffedu notebooks ~/course && jupyter lab ~/course
  # train the digits UNet on the CPU (eps-prediction, linear schedule, T = 1000)
  python -m diffedu train --data digits --steps 4000 --out runs/digits
  # the run was interrupted? the same command plus --resume continues from runs/digits/ckpt.pt
  python -m diffedu train --data digits --steps 4000 --out runs/digits --resume
  # a 2-D toy set, EDM's objective instead of eps-prediction
  python -m diffedu train --data moons --steps 3000 --out runs/moons --objective edm
  # your own folder of PNG/JPEG images, 32x32 RGB
  python -m diffedu train --data ~/faces --size 32 --steps 20000 --out runs/faces
  # 64 samples from a checkpoint with 50 deterministic DDIM steps, as one PNG grid
  python -m diffedu sample --ckpt runs/digits/ckpt.pt --sampler ddim --steps 50 --eta 0 --out grid.png
  # quality and wall time against the number of network evaluations
  python -m diffedu evaluate --ckpt diffedu/shipped/digits_unet.safetensors --sampler ddim --steps 10,20,50
  # the GAN baseline (one network call per image): a DCGAN on MNIST, then its generator as a file
  python -m diffedu train-gan --data mnist --steps 3000 --out runs/gan
  python -m diffedu export-gan --ckpt runs/gan/ckpt.pt --out gan.safetensors
"""

TRAIN_EPILOG = """\
--data is one of: digits (scikit-learn's 1797 handwritten digits, 8x8 native, --size to resize),
moons, swissroll, checkerboard, mixture (eight Gaussians, the exactly-known mixture), or the
path of a folder of PNG/JPEG images (searched recursively, resized and centre-cropped to --size).
The output folder receives ckpt.pt (the checkpoint, rewritten every --ckpt-every steps),
log.jsonl (the loss) and samples_STEP.png (sample grids from the EMA weights).
A killed run continues with the same command plus --resume, exactly where its last checkpoint was;
a folder that already holds a run is refused unless --resume (continue it) or --overwrite (replace
it) is given, and one training at a time writes into a folder (OUT/.lock).
"""


def _mults(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 1,2,2, got {text!r}") from None


def _ints(text: str) -> list[int]:
    return _mults(text)


def _threads(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1 (CPU threads), got {text!r}")
    return n


def sampler_epilog() -> str:
    """One line per registered sampler: name, network calls, what it is."""
    lines = ["samplers (--sampler), from diffedu.samplers.SAMPLERS:"]
    for name, spec in SAMPLERS.items():
        takes = f"; takes {', '.join('--' + k for k in spec.params if k in SAMPLER_OPTIONS)}" \
            if any(k in SAMPLER_OPTIONS for k in spec.params) else ""
        lines.append(f"  {name:<17} {spec.doc}{takes}")
    return "\n".join(lines)


SAMPLER_OPTIONS = ("eta",)   # the registry parameters the command line offers as options


def add_sampler_arguments(p: argparse.ArgumentParser) -> None:
    """--sampler (the registry's keys) and --eta (only for the samplers that take it)."""
    p.add_argument("--sampler", choices=list(SAMPLERS), default="ddim",
                   help="the sampler, from the list below (default %(default)s)")
    p.add_argument("--eta", type=float, default=None,
                   help="noise scale of ddim and ec-partial: 0 deterministic, 1 as much noise as DDPM "
                        "(default: the sampler's own, 0); refused by samplers without one")


def build_parser() -> argparse.ArgumentParser:
    raw = argparse.RawDescriptionHelpFormatter   # the epilogs are laid out by hand; each help says its default
    prog = "diffedu" if Path(sys.argv[0]).name == "diffedu" else "python -m diffedu"     # the console script or -m
    p = argparse.ArgumentParser(prog=prog, description="Train, sample and evaluate the course's "
                                "diffusion models.", epilog=EPILOG, formatter_class=raw)
    p.add_argument("--version", action="version", version=f"diffedu {__version__}", help="print the version and exit")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("train", help="train a model (eps-prediction or EDM) and write checkpoints",
                       epilog=TRAIN_EPILOG, formatter_class=raw)
    t.add_argument("--data", required=True,
                   help="digits | mnist | moons | swissroll | checkerboard | mixture | PATH to images")
    t.add_argument("--conditional", action="store_true",
                   help="digits, mnist: a class-conditional UNet trained on the labels, with label dropout "
                        "(classifier-free guidance at sampling: --label, --guidance)")
    t.add_argument("--label-dropout", type=float, default=TrainConfig.label_dropout,
                   help="--conditional: share of each batch trained as the null class (default %(default)s)")
    t.add_argument("--steps", type=int, required=True, help="total optimiser steps (a resumed run stops here too)")
    t.add_argument("--out", required=True, help="output folder for ckpt.pt, log.jsonl, sample grids")
    t.add_argument("--resume", action="store_true", help="continue the run in OUT from OUT/ckpt.pt (if it exists)")
    t.add_argument("--overwrite", action="store_true",
                   help="OUT holds a run: remove its ckpt.pt, log.jsonl and grids and start afresh")
    t.add_argument("--objective", choices=("eps", "edm"), default=TrainConfig.objective,
                   help="eps: predict the noise on a DDPM linear schedule, T=1000; edm: EDM's denoiser "
                        "(default %(default)s)")
    t.add_argument("--size", type=int, default=None, help="image side in pixels (default: digits 8, mnist 28, folders 32)")
    t.add_argument("--channels", type=int, choices=(1, 3), default=3,
                   help="image folders: 3 = RGB, 1 = grey (default %(default)s)")
    # the defaults are TrainConfig's, except three the shipped assets were trained with (diffedu/shipped/README.md)
    t.add_argument("--batch-size", type=int, default=TrainConfig.batch_size, help="minibatch size (default %(default)s)")
    t.add_argument("--lr", type=float, default=5e-4, help="AdamW learning rate after the warm-up (default %(default)s)")
    t.add_argument("--warmup", type=int, default=TrainConfig.warmup,
                   help="steps of linear learning-rate warm-up (default %(default)s)")
    t.add_argument("--weight-decay", type=float, default=TrainConfig.weight_decay,
                   help="AdamW weight decay (default %(default)s)")
    t.add_argument("--grad-clip", type=float, default=TrainConfig.grad_clip,
                   help="clip the gradient norm to this, 0: off (default %(default)s)")
    t.add_argument("--ema", type=float, default=TrainConfig.ema_decay,
                   help="EMA decay of the weights used for sampling, in [0, 1] (default %(default)s)")
    t.add_argument("--seed", type=int, default=TrainConfig.seed,
                   help="seeds data order, t/sigma and noise: same seed, same run (default %(default)s)")
    t.add_argument("--ckpt-every", type=int, default=250,
                   help="write OUT/ckpt.pt every this many steps (default %(default)s)")
    t.add_argument("--sample-every", type=int, default=1000,
                   help="write a sample grid every this many steps, 0: end only (default %(default)s)")
    t.add_argument("--log-every", type=int, default=TrainConfig.log_every,
                   help="write a line to OUT/log.jsonl every this many steps (default %(default)s)")
    t.add_argument("--base-channels", type=int, default=32, help="UNet: channels at full resolution (default %(default)s)")
    t.add_argument("--channel-mults", type=_mults, default=None,
                   help="UNet: channel multiplier per resolution, e.g. 1,2 (default: 1,2 up to 8 px, 1,2,2 up to 16, else 1,2,2,2)")
    t.add_argument("--num-res-blocks", type=int, default=1, help="UNet: residual blocks per resolution (default %(default)s)")
    t.add_argument("--no-attention", action="store_true", help="UNet: no self-attention at the lowest resolution")
    t.add_argument("--hidden", type=int, default=128, help="MLP (2-D data): hidden width (default %(default)s)")
    t.add_argument("--depth", type=int, default=3, help="MLP (2-D data): residual blocks (default %(default)s)")
    t.add_argument("--n-points", type=int, default=10000, help="2-D data: size of the fixed training set (default %(default)s)")
    t.add_argument("--sigma-data", type=float, default=TrainConfig.sigma_data,
                   help="edm: the data's standard deviation (default %(default)s)")
    add_device_argument(t)
    add_threads_argument(t)
    t.add_argument("--no-progress", action="store_true", help="no tqdm bar")

    s = sub.add_parser("sample", help="draw samples from a checkpoint into a PNG grid",
                       formatter_class=raw, epilog=sampler_epilog())
    s.add_argument("--ckpt", required=True, help="a training checkpoint (ckpt.pt) or an exported .safetensors")
    add_sampler_arguments(s)
    s.add_argument("--steps", type=int, default=50,
                   help="sampling steps (default %(default)s; ddpm always takes all T)")
    s.add_argument("--n", type=int, default=64, help="number of samples (default %(default)s)")
    s.add_argument("--label", type=int, default=None,
                   help="class-conditional models: the class of every sample (default: unconditional)")
    s.add_argument("--guidance", type=float, default=0.0,
                   help="classifier-free guidance weight w >= 0 (needs --label; default %(default)s)")
    s.add_argument("--seed", type=int, default=0, help="seeds the starting noise x_T (default %(default)s)")
    s.add_argument("--out", required=True, help="PNG file (a grid for images, a scatter plot for 2-D), or .pt for the tensor")
    add_overwrite_argument(s)
    add_device_argument(s)
    add_threads_argument(s)

    e = sub.add_parser("evaluate", help="quality and wall time against NFE for one sampler",
                       formatter_class=raw,
                       epilog="digits: Fréchet distance in the shipped classifier's feature space (NOT Inception FID;\n"
                              "comparable only within this course) and the recognisable-digit rate;\n"
                              "2-D data: sliced Wasserstein distance to fresh samples of the data set.\n\n"
                              + sampler_epilog())
    e.add_argument("--ckpt", required=True, help="a training checkpoint (ckpt.pt) or an exported .safetensors")
    add_sampler_arguments(e)
    e.add_argument("--steps", type=_ints, default=[10, 20, 50],
                   help="comma-separated step counts, e.g. 10,20,50 (default 10,20,50)")
    e.add_argument("--n", type=int, default=1000, help="samples per setting (default %(default)s)")
    e.add_argument("--seed", type=int, default=0, help="seeds the starting noise (default %(default)s)")
    e.add_argument("--classifier", default=None, help="digits: classifier file (default: the shipped one)")
    e.add_argument("--json", action="store_true", help="print one JSON object per line instead of a table")
    add_threads_argument(e)

    x = sub.add_parser("export", help="write a checkpoint's EMA weights as a small .safetensors file")
    x.add_argument("--ckpt", required=True, help="a training checkpoint (ckpt.pt)")
    x.add_argument("--out", required=True, help="the .safetensors file to write")
    x.add_argument("--dtype", choices=("float32", "float16"), default="float32",
                   help="the weights' type in the file (default %(default)s)")
    add_overwrite_argument(x)

    c = sub.add_parser("train-classifier", help="train the small digits classifier used by the metrics")
    c.add_argument("--data", choices=LABELLED, default="digits",
                   help="digits (scikit-learn's, 297 held out) or mnist (the 4,000-digit train split; "
                        "accuracy on the test split) (default %(default)s)")
    c.add_argument("--size", type=int, default=None,
                   help="digits: side in pixels, match the generator's (default 8); mnist is 28")
    c.add_argument("--steps", type=int, default=3000, help="optimiser steps (default %(default)s)")
    c.add_argument("--seed", type=int, default=0, help="seeds the weights and the data order (default %(default)s)")
    c.add_argument("--out", required=True, help=".safetensors file")
    add_overwrite_argument(c)
    add_threads_argument(c)

    g = sub.add_parser("train-gan", help="train the DCGAN baseline (one network call per image) on MNIST",
                       epilog=GAN_EPILOG, formatter_class=raw)
    g.add_argument("--data", choices=("mnist",), default="mnist",
                   help="mnist: the 4,000-digit train split, 28x28 (default %(default)s)")
    g.add_argument("--steps", type=int, required=True,
                   help="total steps, each one D and one G update (a resumed run stops here too)")
    g.add_argument("--out", required=True, help="output folder for ckpt.pt, log.jsonl, sample grids")
    g.add_argument("--resume", action="store_true", help="continue the run in OUT from OUT/ckpt.pt (if it exists)")
    g.add_argument("--overwrite", action="store_true",
                   help="OUT holds a run: remove its ckpt.pt, log.jsonl and grids and start afresh")
    g.add_argument("--batch-size", type=int, default=64, help="real images per step (default %(default)s)")
    g.add_argument("--seed", type=int, default=0,
                   help="seeds the weights, data order and z: same seed, same run (default %(default)s)")
    g.add_argument("--ckpt-every", type=int, default=250, help="write OUT/ckpt.pt every this many steps (default %(default)s)")
    g.add_argument("--sample-every", type=int, default=1000,
                   help="write a sample grid every this many steps, 0: end only (default %(default)s)")
    add_threads_argument(g)
    add_device_argument(g)
    g.add_argument("--no-progress", action="store_true", help="no tqdm bar")

    xg = sub.add_parser("export-gan", help="write a GAN checkpoint's generator as a small .safetensors file")
    xg.add_argument("--ckpt", required=True, help="a GAN training checkpoint (OUT/ckpt.pt of train-gan)")
    xg.add_argument("--out", required=True, help="the .safetensors file to write")
    add_overwrite_argument(xg)

    nb = sub.add_parser("notebooks", help="copy the course's notebooks into a folder (then: jupyter lab DIR)")
    nb.add_argument("dir", metavar="DIR", help="the folder to copy them into (made if missing)")
    nb.add_argument("--overwrite", action="store_true",
                    help="replace notebooks already in DIR (your answers in them are lost)")
    return p


GAN_EPILOG = """\
A DCGAN (diffedu.models.gan, width 64, z_dim 64) trained with the non-saturating loss and Adam
(lr 2e-4, betas 0.5, 0.999).  The output folder receives ckpt.pt (both networks, rewritten every
--ckpt-every steps), log.jsonl (d_loss, g_loss every 50 steps) and samples_STEP.png (64 samples from
a fixed z).  A killed run continues with the same command plus --resume, exactly where its last
checkpoint was; a folder that already holds a run is refused unless --resume or --overwrite is given.
"""


def add_device_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default=None, help="cuda | cuda:N | mps | cpu (default: the first available)")


def add_threads_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=_threads, default=None,
                   help="CPU threads for torch, >= 1 (default: torch's choice)")


def add_overwrite_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists (never the input --ckpt)")


# TrainConfig's fields as the train command's options, for messages that name the option
OPTION_OF = {"steps": "--steps", "objective": "--objective", "batch_size": "--batch-size", "lr": "--lr",
             "weight_decay": "--weight-decay", "warmup": "--warmup", "ema_decay": "--ema", "grad_clip": "--grad-clip",
             "sigma_data": "--sigma-data", "seed": "--seed", "ckpt_every": "--ckpt-every",
             "sample_every": "--sample-every", "log_every": "--log-every", "device": "--device",
             "label_dropout": "--label-dropout"}


@contextlib.contextmanager
def about(option: str, path):
    """Turn an OSError (or a safetensors write error) while working on `path` into a ValueError naming the option."""
    try:
        yield
    except (OSError, SafetensorError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        where = f" ({err.filename})" if isinstance(err, OSError) and err.filename and \
            str(err.filename) != str(path) else ""
        raise ValueError(f"{option} {str(path)!r}: {reason}{where}") from err


def check_output(out: str, overwrite: bool, **inputs: str) -> None:
    """Refuse an --out that is one of the inputs (e.g. ckpt='runs/x/ckpt.pt'), a folder, or an existing
    file without --overwrite."""
    target = Path(out)
    for name, path in inputs.items():
        if path is not None and _same_file(target, Path(path)):
            raise ValueError(f"--out {out!r} is the input --{name} {path!r}: writing there would destroy it; "
                             f"choose another --out")
    if target.is_dir():
        raise ValueError(f"--out {out!r} is a folder; give a file name, e.g. {str(target / 'out.png')!r}")
    if target.exists() and not overwrite:
        raise ValueError(f"--out {out!r} exists; pass --overwrite to replace it, or choose another --out")


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)      # hard links, case-insensitive file systems
    except (OSError, ValueError):         # one of them does not exist
        return False


def _device(name):
    """The torch device of --device (ValueError listing the available ones)."""
    try:
        return pick_device(name)
    except ValueError as err:
        raise ValueError(f"--device: {err}") from None


def _threads_from(a) -> None:
    if getattr(a, "threads", None):
        torch.set_num_threads(a.threads)


def cmd_train(a) -> None:
    try:
        config = TrainConfig(steps=a.steps, objective=a.objective, batch_size=a.batch_size, lr=a.lr,
                             weight_decay=a.weight_decay, warmup=a.warmup, ema_decay=a.ema, grad_clip=a.grad_clip,
                             sigma_data=a.sigma_data, seed=a.seed, ckpt_every=a.ckpt_every,
                             sample_every=a.sample_every, log_every=a.log_every, device=a.device,
                             label_dropout=a.label_dropout,
                             progress=not a.no_progress)  # bad values fail here, before anything is read or written
    except ValueError as err:
        field = str(err).split(" ", 1)[0]
        raise ValueError(f"{err} (option {OPTION_OF[field]})" if field in OPTION_OF else str(err)) from None
    if a.resume and a.overwrite:
        raise ValueError("--resume continues the run in --out and --overwrite replaces it: give one of them, not both")
    _device(a.device)
    _threads_from(a)
    if a.conditional and a.data not in LABELLED:
        raise ValueError(f"--conditional needs labelled data: --data {' or '.join(LABELLED)}, got {a.data!r}")
    if a.data == "mnist" and a.size not in (None, 28):
        raise ValueError(f"--data mnist is 28x28: leave out --size (or give 28), got --size {a.size}")
    size = a.size or {"digits": 8, "mnist": 28}.get(a.data, 32)
    with about("--data", a.data):
        if a.conditional:   # images and labels in one read
            data, labels = digits(size) if a.data == "digits" else mnist("train")
        else:
            data, labels = load_training_data(a.data, size=size, channels=a.channels, n=a.n_points, seed=a.seed), None
    torch.manual_seed(a.seed)  # the initial weights
    if a.data in TOY_SETS:
        model = MLP(dim=data.shape[1], hidden=a.hidden, depth=a.depth)
    else:
        mults = a.channel_mults or ([1, 2] if size <= 8 else [1, 2, 2] if size <= 28 else [1, 2, 2, 2])
        model = UNet(in_channels=data.shape[1], base_channels=a.base_channels, channel_mults=mults,
                     num_res_blocks=a.num_res_blocks, attention=not a.no_attention,
                     num_classes=10 if a.conditional else None)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"data {a.data}: {tuple(data.shape)}; model {model.config['kind']} with {n_params / 1e6:.2f}M parameters",
          flush=True)
    source = a.data if a.data in TOY_SETS or a.data in LABELLED else str(Path(a.data).expanduser().resolve())
    t0 = time.time()
    with about("--out", a.out):
        train(model, data, a.out, config, labels=labels, resume=a.resume, overwrite=a.overwrite,
              meta={"data": source, "size": size if a.data not in TOY_SETS else None})
    print(f"done: {a.out}/ckpt.pt after {time.time() - t0:.1f} s", flush=True)


# train_gan's arguments as the train-gan command's options, for messages that name the option
GAN_OPTION_OF = {"steps": "--steps", "batch_size": "--batch-size", "seed": "--seed", "ckpt_every": "--ckpt-every",
                 "sample_every": "--sample-every", "device": "--device"}


def cmd_train_gan(a) -> None:
    if a.resume and a.overwrite:
        raise ValueError("--resume continues the run in --out and --overwrite replaces it: give one of them, not both")
    _device(a.device)
    _threads_from(a)
    images = mnist("train")[0]
    print(f"data {a.data}: {tuple(images.shape)}; DCGAN generator and discriminator, width 64", flush=True)
    t0 = time.time()
    try:
        with about("--out", a.out):
            train_gan(images, a.out, a.steps, batch_size=a.batch_size, seed=a.seed, ckpt_every=a.ckpt_every,
                      sample_every=a.sample_every, resume=a.resume, overwrite=a.overwrite,
                      progress=not a.no_progress, device=a.device)
    except ValueError as err:
        field = str(err).split(" ", 1)[0]
        raise ValueError(f"{err} (option {GAN_OPTION_OF[field]})" if field in GAN_OPTION_OF else str(err)) from None
    print(f"done: {a.out}/ckpt.pt after {time.time() - t0:.1f} s", flush=True)


def cmd_export_gan(a) -> None:
    check_output(a.out, a.overwrite, ckpt=a.ckpt)
    with about("--out", a.out):
        path = export_generator(a.ckpt, a.out)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")


def cmd_sample(a) -> None:
    check_output(a.out, a.overwrite, ckpt=a.ckpt)
    dev = _device(a.device)
    _threads_from(a)
    trained = load_model(a.ckpt, device=dev)
    t0 = time.time()
    traj = generate(trained, a.n, sampler=a.sampler, steps=a.steps, eta=a.eta, labels=a.label, guidance=a.guidance,
                    generator=torch.Generator().manual_seed(a.seed))
    x = traj.x.cpu()
    with about("--out", a.out):
        if a.out.endswith(".pt"):
            out = Path(a.out)
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")   # a killed write leaves no half a tensor
            torch.save(x, tmp)
            os.replace(tmp, out)
        else:
            save_grid(x, a.out)
    print(f"{a.n} samples, {a.sampler}, NFE {traj.nfe}, {time.time() - t0:.2f} s -> {a.out}")


def cmd_evaluate(a) -> None:
    _threads_from(a)
    trained = load_model(a.ckpt)
    rows = evaluate_sampler(trained, sampler=a.sampler, steps=a.steps, eta=a.eta, n=a.n, seed=a.seed,
                            classifier=a.classifier)
    for row in rows:
        if a.json:
            print(json.dumps(row))
        else:
            print("  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()
                            if v is not None))


def cmd_export(a) -> None:
    check_output(a.out, a.overwrite, ckpt=a.ckpt)
    with about("--out", a.out):
        path = export_model(a.ckpt, a.out, a.dtype)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")


def cmd_train_classifier(a) -> None:
    check_output(a.out, a.overwrite)
    if a.data == "mnist" and a.size not in (None, 28):
        raise ValueError(f"--data mnist is 28x28: leave out --size (or give 28), got --size {a.size}")
    _threads_from(a)
    images, labels = digits(a.size or 8) if a.data == "digits" else mnist("train")
    test = mnist("test") if a.data == "mnist" else None
    t0 = time.time()
    clf, acc = train_classifier(images, labels, steps=a.steps, seed=a.seed, progress=True, test=test)
    with about("--out", a.out):
        save_classifier(clf, a.out, meta={"test_accuracy": acc, "steps": a.steps, "seed": a.seed, "data": a.data})
    print(f"held-out accuracy {acc:.4f}; {time.time() - t0:.1f} s -> {a.out}")


def cmd_notebooks(a) -> None:
    written = copy_notebooks(a.dir, overwrite=a.overwrite)
    print(f"copied {len(written)} notebooks into {Path(a.dir).expanduser()}: {', '.join(p.name for p in written)}")
    try:
        print(f"their kernel {KERNEL!r} (this Python) is installed in {install_kernel()}")
    except ImportError:
        print(f"no ipykernel here: pip install 'diffedu[course]' (JupyterLab and ipykernel), then diffedu notebooks again")
    except OSError as err:
        print(f"could not install the kernel {KERNEL!r} ({one_line(err)}); run: {sys.executable} -m ipykernel install "
              f"--user --name {KERNEL}")
    print(f"open them with: jupyter lab {a.dir}")


COMMANDS = {"notebooks": cmd_notebooks, "train": cmd_train, "sample": cmd_sample, "evaluate": cmd_evaluate, "export": cmd_export,
            "train-classifier": cmd_train_classifier, "train-gan": cmd_train_gan, "export-gan": cmd_export_gan}
# what a user can fix: bad values and files (ValueError), the file system (OSError), torch's devices
# and memory (RuntimeError), safetensors files; anything else is a bug and keeps its traceback
USER_ERRORS = (ValueError, OSError, RuntimeError, SafetensorError)


def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    try:
        COMMANDS[a.command](a)
    except USER_ERRORS as err:
        print(f"error: {one_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted" + (": the same command plus --resume continues from the last checkpoint"
                               if a.command in ("train", "train-gan") else ""), file=sys.stderr)
        return 130
    return 0


def one_line(err: BaseException) -> str:
    """The message of `err` on one line; an OSError as 'reason: path'."""
    if isinstance(err, OSError) and err.strerror:
        text = err.strerror + (f": {err.filename}" if err.filename else "")
    else:
        text = str(err) or type(err).__name__
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


if __name__ == "__main__":
    sys.exit(main())
