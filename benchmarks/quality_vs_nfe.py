"""Sample quality against the number of network evaluations on the exact 8-Gaussian mixture.

Every sampler gets the exact denoiser, so the table shows discretisation error alone, beside the
sampling-noise floor (exact samples scored the same way).  Two metrics:
  per-mode Fréchet  mean over modes of the Fréchet distance to N(mu_k, s_k^2 I)  (lower is better)
  NLL               -mean log p(x) under the true mixture (nats; exact samples give the floor,
                    and a sampler that collapses points onto the modes can go *below* it)

A second table puts diffusers' schedulers beside diffedu's samplers at the same NFE, with the
same exact model and the same starting noise (and, for eta = 1, the same generator seed; both
draw their fresh noises in the same order):
  DDIM  diffusers' DDIMScheduler (leading spacing, clip_sample=False, set_alpha_to_one=True, its
        float32 alpha_bar table) fed the mixture's eps-model, against d.sample_ddim
  Heun  diffusers' HeunDiscreteScheduler (use_karras_sigmas=True, prediction_type="sample") fed
        the mixture's denoiser of the unscaled state, against d.sample_edm on diffusers' own
        Karras grid (its sigma range comes from the linear training schedule, ~0.0100..157,
        not EDM's 0.002..80 of the first table)

    .venv/bin/python benchmarks/quality_vs_nfe.py [--n 20000] [--seeds 3] [--out FILE.md]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch

import diffedu as d
from diffedu.samplers import SAMPLERS, Target
from _machine import machine  # noqa: E402  (benchmarks/_machine.py)

T = 1000


def score(mix, x):
    return mix.per_mode_frechet(x).item(), -mix.log_prob(x).mean().item()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20000, help="samples per run")
    ap.add_argument("--seeds", type=int, default=3, help="repeats (medians are printed)")
    ap.add_argument("--out", default=None, help="also write the tables (with the command) to this file")
    args = ap.parse_args()
    lines = []

    def emit(line=""):
        print(line, flush=True)
        lines.append(line)

    torch.set_num_threads(max(1, torch.get_num_threads()))
    mix = d.GaussianMixture.eight_gaussians()
    sched = d.Schedule(d.linear_betas(T))
    eps_model = mix.eps_model(sched)

    def noise(seed):
        return torch.randn(args.n, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)

    # the course's samplers from the registry, on the exact model; the Karras grid on EDM's 0.002..80
    # (diffusers' default range, which the side-by-side table below uses too)
    target = Target(eps_model, sched, mix.denoiser, 0.002, 80.0)
    cases = [("ddpm", {}, (1000,)), ("ddim", {"eta": 0.0}, (5, 10, 20, 50, 100)),
             ("ddim", {"eta": 1.0}, (5, 10, 20, 50, 100)), ("edm-euler", {}, (5, 10, 20, 50, 100)),
             ("edm-heun", {}, (3, 6, 11, 26, 51))]
    runs = {}
    for key, params, steps_list in cases:
        label = SAMPLERS[key].title + "".join(f" {k}={v:g}" for k, v in params.items())
        runs[label] = [(n, lambda s, n, key=key, params=params: SAMPLERS[key](
            target, noise(s), n, generator=torch.Generator().manual_seed(s + 1), record=False, **params))
            for n in steps_list]
    import diffusers

    emit(f"# quality vs NFE, 8-Gaussian mixture (radius 2, std 0.1), n={args.n}, median of {args.seeds} seeds")
    emit(f"# {machine()}; torch {torch.__version__}, diffusers {diffusers.__version__}, "
         f"{torch.get_num_threads()} torch threads, {time.strftime('%Y-%m-%d')}")
    emit()
    floor = [score(mix, mix.sample(args.n, torch.Generator().manual_seed(1000 + s))) for s in range(args.seeds)]
    floor_line = (f"| exact samples (floor) | - | - | {statistics.median(f for f, _ in floor):.5f} | "
                  f"{statistics.median(n for _, n in floor):.4f} | - |")
    emit("| sampler | steps | NFE | per-mode Fréchet | NLL (nats) | wall s |")
    emit("| --- | ---: | ---: | ---: | ---: | ---: |")
    emit(floor_line)
    for name, cases in runs.items():
        for item in cases:
            steps, fn = item[0], item[1]
            res, walls = [], []
            for s in range(args.seeds):
                t0 = time.perf_counter()
                traj = fn(s, steps)
                walls.append(time.perf_counter() - t0)
                res.append(score(mix, traj.x))
            emit(f"| {name} | {steps} | {traj.nfe} | {statistics.median(f for f, _ in res):.5f} | "
                 f"{statistics.median(n for _, n in res):.4f} | {statistics.median(walls):.2f} |")
    side_by_side(mix, sched, eps_model, noise, args.seeds, emit)
    if args.out:
        cmd = "python " + " ".join([os.path.relpath(sys.argv[0])] + sys.argv[1:])
        with open(args.out, "w") as f:
            f.write(f"Command: `{cmd}`\n\n" + "\n".join(lines) + "\n")


def diffusers_ddim(eps_model, x, steps, eta, seed):
    from diffusers import DDIMScheduler

    sch = DDIMScheduler(num_train_timesteps=T, beta_schedule="linear", clip_sample=False, set_alpha_to_one=True,
                        steps_offset=0, timestep_spacing="leading")
    sch.set_timesteps(steps)
    g = torch.Generator().manual_seed(seed)
    for k in sch.timesteps:
        eps = eps_model(x, torch.full((x.shape[0],), int(k) + 1))  # diffusers' timestep k is paper time k + 1
        x = sch.step(eps, k, x, eta=eta, generator=g).prev_sample
    return x, steps


def diffusers_heun(denoiser, x, sch):
    nfe = 0
    for t in sch.timesteps:
        sch.scale_model_input(x, t)  # the network's input x / sqrt(sigma^2 + 1); the exact D takes x itself
        D = denoiser(x, sch.sigmas[sch.step_index].item())
        nfe += 1
        x = sch.step(D, t, x).prev_sample
    return x, nfe


def heun_scheduler(steps):
    from diffusers import HeunDiscreteScheduler

    sch = HeunDiscreteScheduler(num_train_timesteps=T, beta_schedule="linear", use_karras_sigmas=True,
                                prediction_type="sample")
    sch.set_timesteps(steps)
    return sch


def side_by_side(mix, sched, eps_model, noise, seeds, emit):
    """diffedu and diffusers at the same NFE, same model, same start: medians over seeds."""
    emit()
    emit("diffedu beside diffusers, same exact model, same starting noise, same NFE:")
    emit()
    emit("| sampler | steps | NFE | per-mode Fréchet: diffedu | diffusers | NLL: diffedu | diffusers "
         "| wall s: diffedu | diffusers |")
    emit("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    cases = []
    for eta in (0.0, 1.0):
        for n in (5, 10, 20, 50, 100):
            cases.append((f"DDIM eta={eta:g}", n,
                          lambda s, n=n, eta=eta: d.sample_ddim(eps_model, sched, noise(s), steps=n, eta=eta,
                                                                 generator=torch.Generator().manual_seed(s + 1),
                                                                 record=False),
                          lambda s, n=n, eta=eta: diffusers_ddim(eps_model, noise(s), n, eta, s + 1)))
    for n in (3, 6, 11, 26, 51):
        sch = heun_scheduler(n)
        grid = torch.cat([sch.sigmas[:1], sch.sigmas[1::2]]).double()  # diffusers interleaves its two stages

        def ours(s, grid=grid):
            return d.sample_edm(mix.denoiser, grid, grid[0].item() * noise(s), method="heun", record=False)

        def theirs(s, n=n):
            sch = heun_scheduler(n)
            return diffusers_heun(mix.denoiser, sch.init_noise_sigma * noise(s), sch)
        cases.append(("Heun (Karras, diffusers' grid)", n, ours, theirs))
    for name, steps, ours, theirs in cases:
        res = {"ours": [], "theirs": []}
        walls = {"ours": [], "theirs": []}
        for s in range(seeds):
            t0 = time.perf_counter()
            traj = ours(s)
            walls["ours"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            x, nfe = theirs(s)
            walls["theirs"].append(time.perf_counter() - t0)
            assert nfe == traj.nfe, (name, steps, nfe, traj.nfe)
            res["ours"].append(score(mix, traj.x))
            res["theirs"].append(score(mix, x))
        med = {k: (statistics.median(f for f, _ in v), statistics.median(n for _, n in v)) for k, v in res.items()}
        emit(f"| {name} | {steps} | {traj.nfe} | {med['ours'][0]:.5f} | {med['theirs'][0]:.5f} | "
             f"{med['ours'][1]:.4f} | {med['theirs'][1]:.4f} | {statistics.median(walls['ours']):.2f} | "
             f"{statistics.median(walls['theirs']):.2f} |")


if __name__ == "__main__":
    main()
