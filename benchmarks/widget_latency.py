"""Latency of the explorers from a slider change to a redrawn figure, cold (uncached) and cached.

Two paths are timed, each as the median over repeats:
  set+draw    `explorer.set(eta=...)` then a full `fig.canvas.draw()` (the plain-Python path)
  widget      assigning the ipywidgets slider's value, until the observer has put the new PNG in
              the Image widget: sampling, redrawing (the 2-D explorer redraws only its changing
              artists over a saved background) and PNG encoding; what a notebook user waits for,
              less the few milliseconds the kernel and browser take to pass and show the image
Cold moves go to an eta not seen before, so nothing is cached; cached moves go back to a
setting computed earlier.  Budgets (issue 7, 2-core CPU): 2-D explorer 2,000 points at 100
steps < 0.3 s; image explorer 8 digits at 50 steps < 1.5 s.

    .venv/bin/python benchmarks/widget_latency.py [--repeats 7]
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch

import diffedu as d
from diffedu.widgets import Explorer2D, ImageExplorer


def digits_model():
    """The shipped digits UNet, or a stand-in UNet of the default (shipped) size when it is missing."""
    try:
        from diffedu import assets
        from diffedu.widgets.base import unpack_asset

        eps_model, sched, denoiser, shape = unpack_asset(assets.load_digits_unet())
        return eps_model, sched, shape, "shipped digits UNet (assets/digits_unet.safetensors)"
    except (ImportError, ValueError) as err:
        net = d.models.UNet().eval().requires_grad_(False)
        n_params = sum(p.numel() for p in net.parameters())
        return (net, d.Schedule(d.linear_betas(1000)), (1, 16, 16),
                f"STAND-IN: untrained UNet() of the default size ({n_params / 1e6:.2f} M parameters) on 1x16x16, "
                f"same cost as the trained one; shipped asset not available ({err})")


def time_moves(explorer, repeats, via_widget):
    """Median seconds of `repeats` cold moves (new eta each time) and of `repeats` cached moves."""
    if via_widget:
        explorer.widget()
        slider = explorer._ui["controls"]["eta"]

        def move(eta):
            slider.value = eta
            assert explorer.settings["eta"] == eta, explorer._ui["status"].value
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
    args = ap.parse_args()
    print(f"# widget latency, median of {args.repeats} moves; {platform.node()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads by default), {time.strftime('%Y-%m-%d %H:%M')}")
    print(f"# load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())} (other jobs share these cores)")
    eps_model, sched, shape, what = digits_model()
    print(f"# image model: {what}")
    cases = [("2-D explorer, 2000 points, DDIM 100 steps", 0.3, lambda th: Explorer2D(n=2000, steps=100, threads=th)),
             ("image explorer, 8 digits, DDIM 50 steps", 1.5,
              lambda th: ImageExplorer(eps_model, sched, shape, n=8, steps=50, threads=th))]
    print("| explorer | torch threads | path | cold s | cached s | budget s |")
    print("| --- | ---: | --- | ---: | ---: | ---: |")
    for name, budget, make in cases:
        for threads in args.threads:
            for via_widget in (False, True):
                cold, cached = time_moves(make(threads), args.repeats, via_widget)
                ok = "ok" if cold < budget else "OVER"
                print(f"| {name} | {threads} | {'widget' if via_widget else 'set+draw'} | {cold:.3f} | {cached:.3f} | "
                      f"{budget} ({ok}) |", flush=True)
    print(f"# load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
