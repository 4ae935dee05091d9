"""Latency of the explorers from a slider change to a redrawn figure, cold (uncached) and cached.

Two paths are timed, each as the median over repeats:
  set+draw    `explorer.set(eta=...)` then a full `fig.canvas.draw()` (the plain-Python path)
  widget      assigning the ipywidgets slider's value, until the observer has put the new PNG in
              the Image widget: sampling, redrawing (the 2-D explorer redraws only its changing
              artists over a saved background) and PNG encoding; what a notebook user waits for,
              less the few milliseconds the kernel and browser take to pass and show the image
Cold moves go to an eta not seen before, so nothing is cached; cached moves go back to a
setting computed earlier.  Budgets (issues 7 and 15, 2-core CPU): 2-D explorer 2,000 points at
100 steps < 0.3 s; image explorer < 1.5 s, on the 8x8 digits UNet (8 digits, 50 steps) and on the
MNIST UNet (28x28, notebook 02's settings); guidance explorer (MNIST, notebook 06's settings) < 1.5 s
for a move of w, where every w > 0 doubles the batch of every network call (it has no cache: every
move is cold).  --model times another 8x8 checkpoint or export instead of the shipped digits UNet.

    .venv/bin/python benchmarks/widget_latency.py [--repeats 7] [--out benchmarks/results/widget_latency.md]
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg

from diffedu.widgets import Explorer2D, GuidanceExplorer, ImageExplorer
from _machine import cpu_name  # noqa: E402  (benchmarks/_machine.py)


def digits_model(path=None):
    """(target, shape, description): the shipped digits UNet, or the model file at `path`."""
    from diffedu import assets
    from diffedu.checkpoint import load_model

    trained = assets.load_digits_unet() if path is None else load_model(path)
    target, shape = trained.target(), tuple(trained.shape)
    n_params = sum(p.numel() for p in trained.model.parameters())
    where = "shipped digits UNet, assets/digits_unet.safetensors" if path is None else f"NOT the shipped model: {path}"
    return target, shape, f"{where} ({n_params / 1e6:.2f} M parameters, samples {'x'.join(map(str, shape))})"


# notebook 02's and 06's settings of the MNIST explorers (n images, steps, torch threads)
MNIST_IMAGE = dict(n=8, steps=20, threads=2)
MNIST_GUIDANCE = dict(n=8, steps=10, threads=2)


def time_guidance(explorer, repeats, via_widget):
    """Median seconds of `repeats` moves of w (1, 1.5, 2, ...: all > 0, so every call is on the doubled batch)."""
    if via_widget:
        explorer.widget()
        slider = explorer.controls["guidance"]

        def move(w):
            slider.value = w
            assert explorer.settings["guidance"] == w, explorer.ui.children[1].value
    else:
        def move(w):
            explorer.set(guidance=w)
            FigureCanvasAgg(explorer.fig).draw()
    explorer.set(guidance=0.5)
    times = []
    for i in range(repeats):
        t0 = time.perf_counter()
        move(1.0 + 0.5 * i)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def time_moves(explorer, repeats, via_widget):
    """Median seconds of `repeats` cold moves (new eta each time) and of `repeats` cached moves."""
    if via_widget:
        explorer.widget()
        slider = explorer.ui.controls["eta"]

        def move(eta):
            slider.value = eta
            assert explorer.settings["eta"] == eta, explorer.ui.status.value
    else:
        def move(eta):
            explorer.set(eta=eta).canvas.draw()
    explorer.set(eta=0.0).canvas.draw()
    cold, cached = [], []
    etas = [round(0.05 + 0.9 * i / repeats, 6) for i in range(repeats)]
    for eta in etas:
        t0 = time.perf_counter()
        move(eta)
        cold.append(time.perf_counter() - t0)
    for i in range(repeats):
        eta = etas[(i + 1) % len(etas)]
        hits = explorer.stats["hits"]
        t0 = time.perf_counter()
        move(eta)
        cached.append(time.perf_counter() - t0)
        assert explorer.stats["hits"] == hits + 1
    return statistics.median(cold), statistics.median(cached)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, nargs="+", default=[1],
                    help="torch threads while sampling (the explorers' default is 1); e.g. --threads 1 2")
    ap.add_argument("--model", default=None, help="a digits checkpoint (.pt) or export (.safetensors) instead of "
                    "the shipped UNet (the results then say so)")
    ap.add_argument("--out", default=None, help="also write the table, the command, date and machine to this file")
    args = ap.parse_args()
    lines = []

    def emit(line=""):
        print(line, flush=True)
        lines.append(line)

    load = os.getloadavg()
    target, shape, what = digits_model(args.model)
    emit(f"# widget latency: slider move to redrawn figure, median of {args.repeats} moves")
    emit(f"# {os.cpu_count()} CPUs ({cpu_name()}), {platform.system()} {platform.release()}; Python "
         f"{platform.python_version()}, torch {torch.__version__}; {time.strftime('%Y-%m-%d %H:%M %Z')}")
    emit(f"# load average before (1, 5, 15 min): {' '.join(f'{v:.2f}' for v in load)} (other jobs share these cores)")
    emit(f"# image model: {what}")
    emit()
    measured = {}
    cases = [("2-D explorer, 2000 points, DDIM 100 steps", 0.3, lambda th: Explorer2D(n=2000, steps=100, threads=th)),
             ("image explorer, 8 digits, DDIM 50 steps", 1.5,
              lambda th: ImageExplorer(target, shape=shape, n=8, steps=50, threads=th))]
    mnist_image = (f"image explorer, MNIST 28x28, {MNIST_IMAGE['n']} digits, DDIM {MNIST_IMAGE['steps']} steps, "
                   f"{MNIST_IMAGE['threads']} threads")
    mnist_guided = (f"guidance explorer, MNIST, {MNIST_GUIDANCE['n']} digits, DDIM {MNIST_GUIDANCE['steps']} steps, "
                    f"w > 0 (doubled batch), {MNIST_GUIDANCE['threads']} threads")
    emit("| explorer | torch threads | path | cold s | cached s | budget s |")
    emit("| --- | ---: | --- | ---: | ---: | ---: |")
    for name, budget, make in cases:
        for threads in args.threads:
            for via_widget in (False, True):
                cold, cached = time_moves(make(threads), args.repeats, via_widget)
                ok = "ok" if cold < budget else "OVER"
                measured[(name, threads, via_widget)] = cold, cached
                emit(f"| {name} | {threads} | {'widget' if via_widget else 'set+draw'} | {cold:.3f} | {cached:.3f} | "
                     f"{budget} ({ok}) |")
    for via_widget in (False, True):     # a fresh explorer per path: nothing cached from the other
        cold, cached = time_moves(ImageExplorer.from_assets("mnist", **MNIST_IMAGE), args.repeats, via_widget)
        measured[(mnist_image, via_widget)] = cold, cached
        emit(f"| {mnist_image} | {MNIST_IMAGE['threads']} | {'widget' if via_widget else 'set+draw'} | {cold:.3f} | "
             f"{cached:.3f} | 1.5 ({'ok' if cold < 1.5 else 'OVER'}) |")
    for via_widget in (False, True):
        cold = time_guidance(GuidanceExplorer.from_assets(**MNIST_GUIDANCE), args.repeats, via_widget)
        measured[(mnist_guided, via_widget)] = cold, None
        emit(f"| {mnist_guided} | {MNIST_GUIDANCE['threads']} | {'widget' if via_widget else 'set+draw'} | {cold:.3f} | "
             f"(no cache) | 1.5 ({'ok' if cold < 1.5 else 'OVER'}) |")
    emit()
    th = args.threads[0]
    (c2, k2), (ci, ki) = (measured[(name, th, True)] for name, _, _ in cases)
    cm, km = measured[(mnist_image, True)]
    cg = measured[(mnist_guided, True)][0]
    emit("For the README: the explorers answer a slider move with a new figure in "
         f"{c2:.2f} s (2-D, 2,000 points, 100 DDIM steps; budget 0.3 s) and {ci:.2f} s (8 digits, 50 DDIM steps; "
         f"budget 1.5 s) on {os.cpu_count()} CPU cores, {k2:.3f} s and {ki:.3f} s for a setting seen before "
         f"On MNIST (28x28): the image explorer {cm:.2f} s ({MNIST_IMAGE['n']} digits, {MNIST_IMAGE['steps']} steps; "
         f"{km:.3f} s cached), the guidance explorer {cg:.2f} s for a move of w ({MNIST_GUIDANCE['n']} digits, "
         f"{MNIST_GUIDANCE['steps']} steps, doubled batch); budget 1.5 s (`benchmarks/results/widget_latency.md`).")
    emit()
    emit(f"# load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    if args.out:
        command = "python " + " ".join(sys.argv)
        with open(args.out, "w") as f:
            f.write(f"Command: `{command}`\n\n" + "\n".join(lines) + "\n")
        print(f"# written to {args.out}")


if __name__ == "__main__":
    main()
