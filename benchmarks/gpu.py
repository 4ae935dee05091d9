"""The GPU path, measured: train the class-conditional MNIST UNet on CUDA with mixed precision, then sample.

Where CUDA is present this trains the shipped MNIST model's configuration (UNet base 32, mults 1,2,2,
10 classes, label dropout 0.1; eps-prediction, linear schedule, T = 1000; batch --batch) with the very
loop `python -m diffedu train` runs (`diffedu.training.train`: bfloat16 autocast on CUDA, EMA, AdamW),
for --steps optimiser steps, and writes to benchmarks/results/gpu.md:
  * training throughput (images/s, median over the log's 10-step windows after a warm-up),
  * time to a target MNIST FID (--target, in the shipped MNIST classifier's feature space; NOT
    Inception FID): the EMA model is scored every --eval-every steps with 1,000 DDIM-50 samples,
  * sampling throughput (DDIM 50 steps, 1,000 images, guided at w = 2 and unguided),
  * the device, torch and CUDA versions, the command.
Without CUDA it says so and exits 0 (nothing is measured on a CPU here: see training_throughput.py).

    .venv/bin/python benchmarks/gpu.py [--steps 3000] [--batch 128] [--eval-every 500] [--target 10] [--out FILE.md]
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

import diffedu as d
from diffedu import assets
from diffedu.data import mnist
from diffedu.metrics import mnist_fid
from diffedu.training import TrainConfig, train
from _machine import machine  # noqa: E402  (benchmarks/_machine.py)

RESULTS = Path(__file__).resolve().parent / "results" / "gpu.md"


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=3000, help="optimiser steps (default %(default)s)")
    p.add_argument("--batch", type=int, default=128, help="batch size (default %(default)s)")
    p.add_argument("--eval-every", type=int, default=500, help="score the EMA model every N steps (default %(default)s)")
    p.add_argument("--target", type=float, default=10.0, help="the MNIST FID whose first crossing is timed (default %(default)s)")
    p.add_argument("--out", default=str(RESULTS), help="markdown file to write (default benchmarks/results/gpu.md)")
    return p.parse_args(argv)


def images_per_second(log: Path, batch: int, warmup: int = 50) -> float:
    """Median images/s over the log's windows after `warmup` steps (the log has seconds every 10 steps)."""
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    rows = [r for r in rows if r["step"] >= warmup]
    rates = [batch * (b["step"] - a["step"]) / (b["seconds"] - a["seconds"]) for a, b in zip(rows, rows[1:])
             if b["seconds"] > a["seconds"]]
    return statistics.median(rates)


def main(argv=None) -> int:
    a = parse(argv)
    if not torch.cuda.is_available():
        print("benchmarks/gpu.py: no CUDA device here (torch.cuda.is_available() is False): nothing measured, "
              "nothing written. Run it on a machine with an NVIDIA GPU.")
        return 0
    dev = torch.device("cuda")
    images, labels = mnist("train")
    classifier = assets.load_mnist_classifier(device="cpu")
    reference = mnist("test")[0]
    scores, t_start = [], time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        done = 0
        while done < a.steps:                      # train in chunks, resuming, and score the EMA model in between
            done = min(done + a.eval_every, a.steps)
            torch.manual_seed(0)
            model = d.UNet(1, 32, (1, 2, 2), num_classes=10)
            trained = train(model, images, Path(tmp) / "run", TrainConfig(done, batch_size=a.batch, lr=5e-4, seed=0,
                            ckpt_every=a.eval_every, log_every=10, device="cuda", progress=False),
                            labels=labels, resume=bool(scores))   # every chunk after the first continues the run
            train_seconds = time.perf_counter() - t_start - sum(s["eval_seconds"] for s in scores)
            t0 = time.perf_counter()
            x = trained.sample(1000, "ddim", steps=50, labels=torch.arange(1000) % 10,
                               generator=torch.Generator().manual_seed(0))
            fid = mnist_fid(x, classifier, reference)
            scores.append(dict(step=done, train_seconds=train_seconds, fid=fid, eval_seconds=time.perf_counter() - t0))
            print(f"step {done}: MNIST FID {fid:.2f} after {train_seconds:.0f} s of training", flush=True)
        ips = images_per_second(Path(tmp) / "run" / "log.jsonl", a.batch)
    hit = next((s for s in scores if s["fid"] <= a.target), None)
    sampling = {}
    for w in (0.0, 2.0):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        trained.sample(1000, "ddim", steps=50, labels=torch.arange(1000) % 10, guidance=w,
                       generator=torch.Generator().manual_seed(1))
        torch.cuda.synchronize()
        sampling[w] = 1000 / (time.perf_counter() - t0)
    lines = [
        "# The GPU path, measured",
        "",
        f"Command: `.venv/bin/python benchmarks/gpu.py {' '.join(sys.argv[1:])}`".rstrip() + "",
        f"Device: {torch.cuda.get_device_name(0)}; torch {torch.__version__}, CUDA {torch.version.cuda}, "
        f"Python {platform.python_version()}; host {machine()}.",
        f"Model: class-conditional UNet (base 32, mults 1,2,2; {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M "
        f"parameters), MNIST 28x28 train split (4,000), batch {a.batch}, bfloat16 autocast, {a.steps} steps.",
        "MNIST FID: Fréchet distance in the shipped MNIST classifier's features, 1,000 DDIM-50 samples (classes "
        "0-9 in turn) against the 1,000 test digits. NOT Inception FID.",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| training throughput | {ips:,.0f} images/s |",
        f"| time to MNIST FID <= {a.target:g} | " + (f"{hit['train_seconds']:.0f} s (step {hit['step']})" if hit
                                                   else f"not reached in {a.steps} steps") + " |",
        f"| sampling, DDIM 50, w = 0 | {sampling[0.0]:,.0f} images/s |",
        f"| sampling, DDIM 50, w = 2 (doubled batch) | {sampling[2.0]:,.0f} images/s |",
        "",
        "| step | training seconds | MNIST FID |",
        "| --- | --- | --- |",
        *(f"| {s['step']} | {s['train_seconds']:.0f} | {s['fid']:.2f} |" for s in scores),
        "",
    ]
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
