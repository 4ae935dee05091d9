"""Is Heun getting worse with more calls on the digits UNet, or converging to something with a worse FID?

The shipped digits UNet's quality table (benchmarks/results/fid_table.md) shows EDM Heun's digits FID
rising with NFE (1.13 at 21 calls, 2.05 at 51, 2.55 at 101).  This script separates "the solver" from
"what it solves": it approximates the exact solution of the PF-ODE for this network and this noise
(Heun with --reference-steps steps) and reports, for Heun and Euler on Karras sigmas (rho 7) and DDIM
eta = 0 (leading grid) at 11/21/51/101 network calls, the digits FID and the rms distance of the samples
to that solution.  It also runs Euler on DDIM's own leading grid and reports its largest difference from
DDIM (DDIM is Euler's method in x / sqrt(alpha_bar), sigma [DDIM eq. 14, EDM §3]).  And it runs Heun once
more with a denoiser that feeds the network the exact sigma of each evaluation (in the input scaling and in
D = x - sigma eps_hat; the time input stays the nearest of the 1000) instead of `denoiser_from_eps`, which
snaps sigma to the nearest schedule level: the test of whether snapping causes the rise.

    .venv/bin/python benchmarks/ode_convergence.py [--n 1000] [--threads 2] [--out benchmarks/results/ode_convergence.md]
"""
from __future__ import annotations

import argparse
import datetime
import time

import torch

import diffedu as d
from diffedu import assets
from diffedu.metrics import digits_fid
from _machine import machine, write_table  # benchmarks/_machine.py

NFES = (11, 21, 51, 101)


def exact_sigma_denoiser(eps_model, sched):
    """D(x, sigma) = x - sigma eps(x / sqrt(1 + sigma^2), t) with t the nearest schedule time in log sigma, but
    sigma itself (not sigma_t) in the scaling and the subtraction  [EDM Tab. 1, VP column]."""
    log_sig = sched.sigma[1:].log()

    def D(x, sigma):
        sigma = torch.as_tensor(sigma, dtype=torch.float64).reshape(-1).expand(len(x))
        t = (log_sig[None, :] - sigma.log()[:, None]).abs().argmin(1) + 1
        s = sigma.to(x.dtype).reshape(-1, *([1] * (x.dim() - 1)))
        return x - s * eps_model(x / (1 + s**2).sqrt(), t)
    return D


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1000, help="digits per run (seed 0, as in fid_table.md)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reference-steps", type=int, default=201, help="Heun steps of the reference solution")
    ap.add_argument("--out", default="benchmarks/results/ode_convergence.md")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    unet, clf = assets.load_digits_unet(), assets.load_classifier()
    sched, eps = unet.sched, unet.eps_model(unet.sched)
    D = d.denoiser_from_eps(eps, sched)
    lo, hi = float(sched.sigma[1]), float(sched.sigma[-1])
    x_T = torch.randn(a.n, *unet.shape, generator=torch.Generator().manual_seed(0))    # fid_table.md's noise
    lines = ["| sampler | grid | NFE | digits FID | rms distance to the reference |", "| --- | --- | --- | --- | --- |"]
    with torch.no_grad():
        ref = d.sample_edm(D, d.karras_sigmas(a.reference_steps, lo, hi), hi * x_T, "heun")
        lines.append(f"| reference: edm-heun | Karras rho 7 | {ref.nfe} | {digits_fid(ref.x, clf):.3f} | 0 |")
        for nfe in NFES:
            runs = {("edm-heun", "Karras rho 7"): d.sample_edm(D, d.karras_sigmas((nfe + 1) // 2, lo, hi), hi * x_T, "heun"),
                    ("edm-euler", "Karras rho 7"): d.sample_edm(D, d.karras_sigmas(nfe, lo, hi), hi * x_T, "euler"),
                    ("ddim eta=0", "leading"): d.sample_ddim(eps, sched, x_T, steps=nfe, eta=0.0),
                    ("edm-heun, exact sigma in D", "Karras rho 7"): d.sample_edm(
                        exact_sigma_denoiser(eps, sched), d.karras_sigmas((nfe + 1) // 2, lo, hi), hi * x_T, "heun")}
            for (name, grid), traj in runs.items():
                dist = (traj.x - ref.x).pow(2).mean().sqrt().item()
                lines.append(f"| {name} | {grid} | {traj.nfe} | {digits_fid(traj.x, clf):.3f} | {dist:.4f} |")
                print(lines[-1], flush=True)
        ts = d.ddim_timesteps(sched.T, 20)
        euler = d.sample_edm(D, sched.sigma[ts].float(), x_T / sched.alpha_bar[ts[0]].sqrt().float(), "euler").x
        gap = (euler - d.sample_ddim(eps, sched, x_T, steps=20, eta=0.0).x).abs().max().item()
    header = ["# PF-ODE convergence on the shipped digits UNet: FID and distance to the exact solution against NFE", "",
              f"`.venv/bin/python benchmarks/ode_convergence.py --n {a.n} --threads {a.threads} --reference-steps "
              f"{a.reference_steps}`; {datetime.date.today()}, {machine()}, torch {torch.__version__}, {a.threads} threads, "
              f"{time.perf_counter() - t0:.0f} s.", "",
              "Digits FID as in fid_table.md (not Inception FID). Distance: rms over pixels and samples between a run's "
              f"samples and the reference's, same x_T (seed 0). Euler on DDIM's 20 leading times against DDIM 20: largest "
              f"difference {gap:.1e}.", ""]
    write_table(a.out, header, lines)


if __name__ == "__main__":
    main()
