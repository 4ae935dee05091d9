"""Does EDM's stochastic churn help a trained network?  FID against S_churn for Heun on Karras sigmas.

On the exact mixture churn can only cost accuracy (notebook 04, section 6): there is no error for the fresh
noise to wash out.  A trained network has errors, and DDIM with eta = 1 beats eta = 0 on the MNIST UNet
(mnist_table.md), so churn [EDM Alg. 2] may help it.  This script samples the shipped digits UNet (8x8,
unconditional, n digits, seed 0: fid_table.md's noise) and the shipped MNIST UNet (28x28, sample i asks for
class i mod 10, w = 0: mnist_table.md's setting) with EDM Heun on STEPS Karras levels (rho 7) over the
schedule's sigma range, for each S_churn, with S_tmin = 0.05, S_tmax = 50, S_noise = 1 and the churn noise
from a generator seeded 1; it reports FID (digits or MNIST FID, the course's classifiers, not Inception),
the recognisable rate and the network calls.  The exact mixture's per-mode Fréchet distance with the same
settings is the row the notebook already has, measured again here for the side-by-side.

    .venv/bin/python benchmarks/churn.py [--n-digits 1000] [--n-mnist 500] [--steps 18] [--threads 2]
"""
from __future__ import annotations

import argparse
import datetime
import time

import torch

import diffedu as d
from diffedu import assets
from diffedu.metrics import digits_fid, mnist_fid, recognisable_rate
from diffedu.sampling import guided
from _machine import machine, write_table  # benchmarks/_machine.py

CHURNS = (0, 1, 2, 4, 8)          # gamma_i = min(S_churn / steps, sqrt(2) - 1): 18 steps saturate at 7.5
S_TMIN, S_TMAX = 0.05, 50.0


def heun(denoiser, lo, hi, x_T, steps, s_churn):
    sigmas = d.karras_sigmas(steps, lo, hi)
    return d.sample_edm(denoiser, sigmas, hi * x_T, "heun", s_churn=s_churn, s_tmin=S_TMIN, s_tmax=S_TMAX,
                        generator=torch.Generator().manual_seed(1), record=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-digits", type=int, default=1000)
    ap.add_argument("--n-mnist", type=int, default=500)
    ap.add_argument("--steps", type=int, default=18, help="Karras levels (Heun: 2 steps - 1 network calls)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="benchmarks/results/churn.md")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    lines = ["| model | S_churn | NFE | FID | recognisable | seconds |", "| --- | --- | --- | --- | --- | --- |"]
    mix = d.GaussianMixture.eight_gaussians()
    x_mix = torch.randn(20_000, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for s_churn in CHURNS:
        traj = heun(mix.denoiser, 0.002, 80.0, x_mix, a.steps, s_churn)
        lines.append(f"| exact mixture (per-mode Fréchet) | {s_churn} | {traj.nfe} | {mix.per_mode_frechet(traj.x):.5f} | | |")
        print(lines[-1], flush=True)
    digits, clf = assets.load_digits_unet(), assets.load_classifier()
    mnist, mnist_clf = assets.load_mnist_unet(), assets.load_mnist_classifier()
    cond = guided(mnist, a.n_mnist, labels=torch.arange(a.n_mnist) % 10)
    models = [("digits UNet (digits FID)", digits.eps_model(digits.sched), digits.sched, digits.shape, a.n_digits,
               lambda x: digits_fid(x, clf), lambda x: recognisable_rate(x, clf)),
              ("MNIST UNet, class i mod 10 (MNIST FID)", cond.eps_model(cond.sched), cond.sched, mnist.shape, a.n_mnist,
               lambda x: mnist_fid(x, mnist_clf), lambda x: recognisable_rate(x, mnist_clf))]
    with torch.no_grad():
        for name, eps, sched, shape, n, fid, rec in models:
            D = d.denoiser_from_eps(eps, sched)
            lo, hi = float(sched.sigma[1]), float(sched.sigma[-1])
            x_T = torch.randn(n, *shape, generator=torch.Generator().manual_seed(0))
            for s_churn in CHURNS:
                t1 = time.perf_counter()
                traj = heun(D, lo, hi, x_T, a.steps, s_churn)
                x = traj.x
                lines.append(f"| {name} | {s_churn} | {traj.nfe} | {fid(x):.3f} | {rec(x):.3f} | {time.perf_counter() - t1:.0f} |")
                print(lines[-1], flush=True)
    header = ["# Stochastic churn on trained networks: FID against S_churn, EDM Heun", "",
              f"`.venv/bin/python benchmarks/churn.py --n-digits {a.n_digits} --n-mnist {a.n_mnist} --steps {a.steps} "
              f"--threads {a.threads}`; {datetime.date.today()}, {machine()}, torch {torch.__version__}, {a.threads} threads, "
              f"{time.perf_counter() - t0:.0f} s.", "",
              f"Heun on {a.steps} Karras levels (rho 7) over each schedule's sigma range; S_tmin = {S_TMIN}, "
              f"S_tmax = {S_TMAX}, S_noise = 1; x_T seed 0, churn noise seed 1; gamma_i = min(S_churn / {a.steps}, "
              f"sqrt(2) - 1), saturated from S_churn = {a.steps * 0.4142:.1f}. The exact mixture's row: 20,000 samples, "
              "per-mode Fréchet distance in the FID column. FIDs use the course's classifiers (not Inception) and "
              "are comparable only within one model.", ""]
    write_table(a.out, header, lines)


if __name__ == "__main__":
    main()
