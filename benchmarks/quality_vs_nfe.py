"""Sample quality against the number of network evaluations on the exact 8-Gaussian mixture.

Every sampler gets the exact denoiser, so the table shows discretisation error alone, beside the
sampling-noise floor (exact samples scored the same way).  Two metrics:
  per-mode Fréchet  mean over modes of the Fréchet distance to N(mu_k, s_k^2 I)  (lower is better)
  NLL               -mean log p(x) under the true mixture (nats; exact samples give the floor,
                    and a sampler that collapses points onto the modes can go *below* it)

    .venv/bin/python benchmarks/quality_vs_nfe.py [--n 20000] [--seeds 3]
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

import diffedu as d


def score(mix, x):
    return mix.per_mode_frechet(x).item(), -mix.log_prob(x).mean().item()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20000, help="samples per run")
    ap.add_argument("--seeds", type=int, default=3, help="repeats (medians are printed)")
    args = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    mix = d.GaussianMixture.eight_gaussians()
    sched = d.Schedule(d.linear_betas(1000))
    eps_model = mix.eps_model(sched)

    def noise(seed):
        return torch.randn(args.n, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)

    runs = {
        "DDPM (beta_tilde)": [(1000, lambda s, _: d.sample_ddpm(eps_model, sched, noise(s), generator=torch.Generator().manual_seed(s + 1), record=False))],
    }
    for eta in (0.0, 1.0):
        runs[f"DDIM eta={eta:g}"] = [
            (n, lambda s, n, eta=eta: d.sample_ddim(eps_model, sched, noise(s), steps=n, eta=eta,
                                                     generator=torch.Generator().manual_seed(s + 1), record=False))
            for n in (5, 10, 20, 50, 100)]
    for method in ("euler", "heun"):
        runs[f"EDM {method} (Karras)"] = [
            (n, lambda s, n, method=method: d.sample_edm(mix.denoiser, d.karras_sigmas(n), 80 * noise(s), method=method,
                                                          record=False))
            for n in ((5, 10, 20, 50, 100) if method == "euler" else (3, 6, 11, 26, 51))]
    print(f"# quality vs NFE, 8-Gaussian mixture (radius 2, std 0.1), n={args.n}, median of {args.seeds} seeds")
    print(f"# {platform.node()} {platform.processor() or platform.machine()}, torch {torch.__version__}, {time.strftime('%Y-%m-%d')}")
    floor = [score(mix, mix.sample(args.n, torch.Generator().manual_seed(1000 + s))) for s in range(args.seeds)]
    print("| sampler | steps | NFE | per-mode Fréchet | NLL (nats) | wall s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    print(f"| exact samples (floor) | - | - | {statistics.median(f for f, _ in floor):.5f} | "
          f"{statistics.median(n for _, n in floor):.4f} | - |")
    for name, cases in runs.items():
        for item in cases:
            steps, fn = item[0], item[1]
            res, walls = [], []
            for s in range(args.seeds):
                t0 = time.perf_counter()
                traj = fn(s, steps) if name.startswith(("DDIM", "EDM")) else fn(s, None)
                walls.append(time.perf_counter() - t0)
                res.append(score(mix, traj.x))
            print(f"| {name} | {steps} | {traj.nfe} | {statistics.median(f for f, _ in res):.5f} | "
                  f"{statistics.median(n for _, n in res):.4f} | {statistics.median(walls):.2f} |")


if __name__ == "__main__":
    main()
