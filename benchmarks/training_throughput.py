"""Training throughput: samples per second of the course's training loop, on the CPU (and a GPU if there is one).

Two models, built as the CLI builds them (diffedu/__main__.py, cmd_train), trained by the very
loop `python -m diffedu train` runs (diffedu.training.train: AdamW, gradient clipping, EMA, the
log line every 10 steps), with the CLI's defaults (batch 128, lr 5e-4, EMA 0.999, seed 0):
  digits UNet  python -m diffedu train --data digits --base-channels 32 --num-res-blocks 2
               (8x8 digits, channel mults [1, 2], attention at the lowest resolution; eps-prediction)
  2-D MLP      python -m diffedu train --data moons  (MLP hidden 128, depth 3; eps-prediction)
  MNIST UNet   python -m diffedu train --data mnist --conditional --batch-size 64  (28x28, base 32, mults
               [1, 2, 2], 10 classes with label dropout 0.1: the shipped MNIST model's configuration)
Checkpoints are written only at the end (the CLI writes one every 250 steps, a few ms for these
models), so the timed window holds optimiser steps alone.  Timing: the loop's own log
(log.jsonl, "seconds" every 10 steps); the first `--warmup` steps are dropped, and the table
shows the median over the 10-step windows that follow, as samples/s and ms per step.

    .venv/bin/python benchmarks/training_throughput.py [--steps 200] [--warmup 20] [--models mnist] [--out FILE.md]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time

import torch

import diffedu as d
from diffedu.data import load_training_data, mnist
from diffedu.models import MLP, UNet
from diffedu.training import TrainConfig, train
from _machine import machine  # noqa: E402  (benchmarks/_machine.py)

BATCH = 128  # the CLI's default --batch-size
LOG_EVERY = TrainConfig.log_every  # one log line with the elapsed seconds every 10 steps


def digits_unet():
    data = load_training_data("digits", size=8)
    torch.manual_seed(0)
    model = UNet(in_channels=data.shape[1], base_channels=32, channel_mults=[1, 2], num_res_blocks=2, attention=True)
    return model, data


def moons_mlp():
    data = load_training_data("moons", n=10000, seed=0)
    torch.manual_seed(0)
    return MLP(dim=data.shape[1], hidden=128, depth=3), data


def mnist_unet():
    data, labels = mnist("train")
    torch.manual_seed(0)
    return UNet(in_channels=1, base_channels=32, channel_mults=[1, 2, 2], num_classes=10), data, labels


MODELS = {"digits UNet (8x8, base 32, 2 res blocks)": digits_unet, "2-D MLP (hidden 128, depth 3)": moons_mlp,
          "MNIST UNet (28x28, base 32, conditional)": mnist_unet}
BATCH_OF = {mnist_unet: 64}   # the CLI command's --batch-size for that model; the others use BATCH


def measure(make, steps: int, warmup: int, device: str, batch: int = BATCH) -> tuple[float, float, int]:
    """(median ms per step over 10-step windows after warm-up, mean ms per step, parameter count)."""
    model, data, *labels = make()
    n_params = sum(p.numel() for p in model.parameters())
    with tempfile.TemporaryDirectory() as tmp:
        config = TrainConfig(steps=warmup + steps, batch_size=batch, lr=5e-4, ema_decay=0.999, seed=0,
                             ckpt_every=10**9, sample_every=0, log_every=LOG_EVERY, progress=False, device=device)
        train(model, data, tmp, config, labels=labels[0] if labels else None)
        log = [json.loads(line) for line in open(os.path.join(tmp, "log.jsonl"))]
    t = {r["step"]: r["seconds"] for r in log}
    marks = [s for s in sorted(t) if s >= warmup]
    windows = [(t[b] - t[a]) / (b - a) for a, b in zip(marks[:-1], marks[1:])]
    return statistics.median(windows) * 1e3, (t[marks[-1]] - t[marks[0]]) / (marks[-1] - marks[0]) * 1e3, n_params


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=200, help="timed optimiser steps (a multiple of 10)")
    ap.add_argument("--warmup", type=int, default=20, help="steps before timing starts (a multiple of 10)")
    ap.add_argument("--threads", default="1,2", help="comma-separated CPU thread counts")
    ap.add_argument("--models", default="digits,2-d,mnist",
                    help="comma-separated words that pick models by name (default: all three)")
    ap.add_argument("--out", default=None, help="also write the table (with the command) to this file")
    args = ap.parse_args()
    if args.steps % LOG_EVERY or args.warmup % LOG_EVERY or args.steps < 2 * LOG_EVERY:
        ap.error(f"--steps and --warmup must be multiples of {LOG_EVERY}, and --steps at least {2 * LOG_EVERY}")
    configs = [("cpu", int(n)) for n in args.threads.split(",")]
    if torch.cuda.is_available():  # only then: this benchmark never asks for a GPU that is not there
        configs.append(("cuda", None))
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no GPU"
    lines = [
        f"# training throughput: batch {BATCH} (MNIST UNet: 64), {args.steps} timed steps after {args.warmup} warm-up steps, "
        f"median over {LOG_EVERY}-step windows",
        f"# {machine()}{gpu}; load average {os.getloadavg()[0]:.2f} at start; Python {platform.python_version()}, "
        f"torch {torch.__version__}, diffedu {d.__version__}; {time.strftime('%Y-%m-%d')}",
        "",
        "| model | parameters | device | threads | samples/s | ms/step (median) | ms/step (mean) |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    print("\n".join(lines), flush=True)
    chosen = [w.strip().lower() for w in args.models.split(",")]
    for name, make in MODELS.items():
        if not any(w in name.lower() for w in chosen):
            continue
        batch = BATCH_OF.get(make, BATCH)
        for device, threads in configs:
            if threads is not None:
                torch.set_num_threads(threads)
            med, mean, n_params = measure(make, args.steps, args.warmup, device, batch)
            line = (f"| {name} | {n_params / 1e6:.2f}M | {device} | {threads or '-'} | {batch / med * 1e3:,.0f} | "
                    f"{med:.1f} | {mean:.1f} |")
            lines.append(line)
            print(line, flush=True)
    if args.out:
        cmd = "python " + " ".join([os.path.relpath(sys.argv[0])] + sys.argv[1:])
        with open(args.out, "w") as f:
            f.write(f"Command: `{cmd}`\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
