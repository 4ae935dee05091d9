"""The command line: `python -m diffedu {train, sample, evaluate, export, train-classifier} --help`."""
from __future__ import annotations

import argparse
import json
import sys
import time

EPILOG = """\
examples (each command has its own --help):
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
  python -m diffedu evaluate --ckpt assets/digits_unet.safetensors --sampler ddim --steps 10,20,50
"""

TRAIN_EPILOG = """\
--data is one of: digits (scikit-learn's 1797 handwritten digits, 8x8 native, --size to resize),
moons, swissroll, checkerboard, mixture (eight Gaussians, the exactly-known mixture), or the
path of a folder of PNG/JPEG images (searched recursively, resized and centre-cropped to --size).
The output folder receives ckpt.pt (the checkpoint, rewritten every --ckpt-every steps),
log.jsonl (the loss) and samples_STEP.png (sample grids from the EMA weights).
A killed run continues with the same command plus --resume, exactly where its last checkpoint was.
"""


def _mults(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 1,2,2, got {text!r}") from None


def _ints(text: str) -> list[int]:
    return _mults(text)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m diffedu", description="Train, sample and evaluate the course's "
                                "diffusion models.", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("train", help="train a model (eps-prediction or EDM) and write checkpoints",
                       epilog=TRAIN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("--data", required=True, help="digits | moons | swissroll | checkerboard | mixture | PATH to images")
    t.add_argument("--steps", type=int, required=True, help="total optimiser steps (a resumed run stops here too)")
    t.add_argument("--out", required=True, help="output folder for ckpt.pt, log.jsonl, sample grids")
    t.add_argument("--resume", action="store_true", help="continue from OUT/ckpt.pt if it exists")
    t.add_argument("--objective", choices=("eps", "edm"), default="eps",
                   help="eps: predict the noise on a DDPM linear schedule, T=1000 (default); edm: EDM's denoiser")
    t.add_argument("--size", type=int, default=None, help="image side in pixels (digits: default 8; folders: 32)")
    t.add_argument("--channels", type=int, choices=(1, 3), default=3, help="image folders: 3 = RGB, 1 = grey")
    t.add_argument("--batch-size", type=int, default=128)
    t.add_argument("--lr", type=float, default=5e-4, help="AdamW learning rate after a 100-step warm-up")
    t.add_argument("--ema", type=float, default=0.999, help="EMA decay of the weights used for sampling")
    t.add_argument("--seed", type=int, default=0, help="seeds data order, t/sigma and noise: same seed, same run")
    t.add_argument("--ckpt-every", type=int, default=250, help="write OUT/ckpt.pt every this many steps")
    t.add_argument("--sample-every", type=int, default=1000, help="write a sample grid every this many steps (0: end only)")
    t.add_argument("--base-channels", type=int, default=32, help="UNet: channels at full resolution")
    t.add_argument("--channel-mults", type=_mults, default=None,
                   help="UNet: channel multiplier per resolution, e.g. 1,2 (default: 1,2 up to 8 px, 1,2,2 up to 16, else 1,2,2,2)")
    t.add_argument("--num-res-blocks", type=int, default=1, help="UNet: residual blocks per resolution")
    t.add_argument("--no-attention", action="store_true", help="UNet: no self-attention at the lowest resolution")
    t.add_argument("--hidden", type=int, default=128, help="MLP (2-D data): hidden width")
    t.add_argument("--depth", type=int, default=3, help="MLP (2-D data): residual blocks")
    t.add_argument("--n-points", type=int, default=10000, help="2-D data: size of the fixed training set")
    t.add_argument("--sigma-data", type=float, default=0.5, help="edm: the data's standard deviation")
    t.add_argument("--device", default=None, help="cuda | mps | cpu (default: the first available)")
    t.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    t.add_argument("--no-progress", action="store_true", help="no tqdm bar")

    s = sub.add_parser("sample", help="draw samples from a checkpoint into a PNG grid",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="samplers: ddpm (all T steps; --steps ignored), ddim (--steps, --eta: 0 deterministic, "
                              "1 DDPM-like),\nedm-heun (2 steps - 1 network calls), edm-euler (EDM's Karras noise levels)")
    s.add_argument("--ckpt", required=True, help="a training checkpoint (ckpt.pt) or an exported .safetensors")
    s.add_argument("--sampler", choices=("ddpm", "ddim", "edm-heun", "edm-euler"), default="ddim")
    s.add_argument("--steps", type=int, default=50)
    s.add_argument("--eta", type=float, default=0.0, help="ddim only: 0 = deterministic, 1 = as much noise as DDPM")
    s.add_argument("--n", type=int, default=64, help="number of samples")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", required=True, help="PNG file (a grid for images, a scatter plot for 2-D), or .pt for the tensor")
    s.add_argument("--device", default=None)

    e = sub.add_parser("evaluate", help="quality and wall time against NFE for one sampler",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="digits: Fréchet distance in the shipped classifier's feature space (NOT Inception FID;\n"
                              "comparable only within this course) and the recognisable-digit rate;\n"
                              "2-D data: sliced Wasserstein distance to fresh samples of the data set.")
    e.add_argument("--ckpt", required=True)
    e.add_argument("--sampler", choices=("ddpm", "ddim", "edm-heun", "edm-euler"), default="ddim")
    e.add_argument("--steps", type=_ints, default=[10, 20, 50], help="comma-separated step counts, e.g. 10,20,50")
    e.add_argument("--eta", type=float, default=0.0)
    e.add_argument("--n", type=int, default=1000, help="samples per setting")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--classifier", default=None, help="digits: classifier file (default: the shipped one)")
    e.add_argument("--json", action="store_true", help="print one JSON object per line instead of a table")

    x = sub.add_parser("export", help="write a checkpoint's EMA weights as a small .safetensors file")
    x.add_argument("--ckpt", required=True)
    x.add_argument("--out", required=True)
    x.add_argument("--dtype", choices=("float32", "float16"), default="float32")

    c = sub.add_parser("train-classifier", help="train the small digits classifier used by the metrics")
    c.add_argument("--size", type=int, default=8, help="digit side in pixels (match the generator's)")
    c.add_argument("--steps", type=int, default=3000)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--out", required=True, help=".safetensors file")
    return p


def cmd_train(a) -> None:
    import torch

    from .data import TOY_SETS, load_training_data
    from .models import MLP, UNet
    from .training import train

    if a.threads:
        torch.set_num_threads(a.threads)
    size = a.size or (8 if a.data == "digits" else 32)
    data = load_training_data(a.data, size=size, channels=a.channels, n=a.n_points, seed=a.seed)
    torch.manual_seed(a.seed)  # the initial weights
    if a.data in TOY_SETS:
        model = MLP(dim=data.shape[1], hidden=a.hidden, depth=a.depth)
    else:
        mults = a.channel_mults or ([1, 2] if size <= 8 else [1, 2, 2] if size <= 16 else [1, 2, 2, 2])
        model = UNet(in_channels=data.shape[1], base_channels=a.base_channels, channel_mults=mults,
                     num_res_blocks=a.num_res_blocks, attention=not a.no_attention)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"data {a.data}: {tuple(data.shape)}; model {model.config['kind']} with {n_params / 1e6:.2f}M parameters",
          flush=True)
    t0 = time.time()
    train(model, data, a.out, steps=a.steps, objective=a.objective, batch_size=a.batch_size, lr=a.lr,
          ema_decay=a.ema, sigma_data=a.sigma_data, seed=a.seed, ckpt_every=a.ckpt_every,
          sample_every=a.sample_every, resume=a.resume, device=a.device, progress=not a.no_progress,
          meta={"data": a.data, "size": size if a.data not in TOY_SETS else None})
    print(f"done: {a.out}/ckpt.pt after {time.time() - t0:.1f} s", flush=True)


def cmd_sample(a) -> None:
    import torch

    from .checkpoint import load_model
    from .sampling import generate
    from .training import pick_device, save_grid

    trained = load_model(a.ckpt, device=pick_device(a.device))
    t0 = time.time()
    traj = generate(trained, a.n, sampler=a.sampler, steps=a.steps, eta=a.eta,
                    generator=torch.Generator().manual_seed(a.seed))
    x = traj.x.cpu()
    if a.out.endswith(".pt"):
        torch.save(x, a.out)
    else:
        save_grid(x, a.out)
    print(f"{a.n} samples, {a.sampler}, NFE {traj.nfe}, {time.time() - t0:.2f} s -> {a.out}")


def cmd_evaluate(a) -> None:
    from .checkpoint import load_model
    from .metrics import evaluate_sampler

    trained = load_model(a.ckpt)
    rows = evaluate_sampler(trained, sampler=a.sampler, steps=a.steps, eta=a.eta, n=a.n, seed=a.seed,
                            classifier=a.classifier)
    for row in rows:
        if a.json:
            print(json.dumps(row))
        else:
            print("  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))


def cmd_export(a) -> None:
    from .checkpoint import export_model

    path = export_model(a.ckpt, a.out, a.dtype)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")


def cmd_train_classifier(a) -> None:
    from .data import digits
    from .models.classifier import save_classifier, train_classifier

    images, labels = digits(a.size)
    t0 = time.time()
    clf, acc = train_classifier(images, labels, steps=a.steps, seed=a.seed, progress=True)
    save_classifier(clf, a.out, meta={"test_accuracy": acc, "steps": a.steps, "seed": a.seed})
    print(f"held-out accuracy {acc:.4f}; {time.time() - t0:.1f} s -> {a.out}")


def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    handler = {"train": cmd_train, "sample": cmd_sample, "evaluate": cmd_evaluate, "export": cmd_export,
               "train-classifier": cmd_train_classifier}[a.command]
    try:
        handler(a)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
