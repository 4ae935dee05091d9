"""What a sampler costs beyond the network: time per step with an identity model.

Five loops of the same update, each run many times in turn (so that load on the machine hits
them alike); the table shows medians per step and their ratios to the two floors measured in the
same run:
  floor              a bare torch loop of the same arithmetic: coefficients precomputed as Python
                     floats, the (B,) time / sigma tensor a network needs made at each call,
                     nothing kept
  floor + recording  the same loop, each x_t and x0_hat (D for Heun) written straight into
                     preallocated (n + 1, *shape) tensors by the operation that computes it
                     (out=): the least memory traffic any loop that records can have.  The
                     memory comes from diffedu._recording.empty_steps, as diffedu's does: how
                     memory is obtained decides much of what recording costs (torch.empty's
                     4 KiB pages cost ~2x more for the images on this machine)
  diffedu            `sample_ddim` / `sample_edm` with record=True, reading the stacked
                     trajectory (.xs, .x0_hats) as every widget does, and with record=False (only
                     x_T and the final sample kept)
  NaN/inf check      `diffedu.trajectory.check_run` alone, on a finished trajectory: what every
                     diffedu sampler pays, once after its last step, to refuse a non-finite sample
                     (its us/step is the check's time divided by the steps; it is part of the
                     diffedu rows above it)
  diffusers          the scheduler loop its docs show, on a scheduler made once (as a pipeline
                     keeps it): `set_timesteps`, then `scheduler.step` per model call (`DDIMScheduler`; `HeunDiscreteScheduler` with Karras sigmas, which
                     also needs `scale_model_input` before each call, one elementwise division);
                     it keeps nothing
Workloads: 10,000 2-D points, and a batch of 64 images of 3x32x32 (CIFAR-sized), float32.
DDIM: 50 steps, eta = 0 (50 model calls).  EDM Heun: 25 steps on the Karras grid, no churn
(49 model calls); the sigma grid is diffusers' own, so all loops walk the same noise levels.
The model is the identity (eps_hat = x, D = x): it costs one Python call and no arithmetic.
Before timing, every loop's final sample is checked against the floor's.

    .venv/bin/python benchmarks/sampler_overhead.py [--repeats 31] [--threads 1] [--out FILE.md]
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import subprocess
import sys
import time

import torch

import diffedu as d
from diffedu._recording import empty_steps
from diffedu.trajectory import check_run
from _machine import machine  # noqa: E402  (benchmarks/_machine.py)

FLOOR = "floor: bare torch loop"
FLOOR_REC = "floor + recording: the bare loop writing every x_t, x0_hat into preallocated tensors"
CHECK = "diffedu's NaN/inf check after the last step (check_run), per step"
DDIM_STEPS = 50
HEUN_STEPS = 25
T = 1000


def identity(x, t):
    return x


# ---------------------------------------------------------------------------------------------
# DDIM, eta = 0 [DDIM eq. 12]


def ddim_floor(model, alpha_bar, ts, x, keep=False):
    """x0_hat = (x - sqrt(1 - a) eps) / sqrt(a); x = sqrt(a') x0_hat + sqrt(1 - a') eps.

    keep=True records every x_t and x0_hat the cheapest way torch offers: the last operation of
    each writes straight into preallocated (n + 1, *x.shape) and (n, *x.shape) tensors (out=).
    """
    ab = [alpha_bar[t] for t in ts]
    coefs = [(math.sqrt(1 - a), math.sqrt(a), math.sqrt(a2), math.sqrt(1 - a2)) for a, a2 in zip(ab[:-1], ab[1:])]
    B, n = x.shape[0], len(coefs)
    if keep:
        xs, x0_hats = empty_steps(n + 1, x), empty_steps(n, x)
        xs[0] = x
    for i, (t, (s1, s2, c0, c1)) in enumerate(zip(ts[:-1], coefs)):
        eps = model(x, torch.full((B,), t, dtype=torch.long))
        x0_hat = torch.div(x - s1 * eps, s2, out=x0_hats[i] if keep else None)
        x = torch.add(c0 * x0_hat, c1 * eps, out=xs[i + 1] if keep else None)
    return x


def ddim_diffusers(model, sch, x):
    sch.set_timesteps(DDIM_STEPS)
    for t in sch.timesteps:
        x = sch.step(model(x, t), t, x).prev_sample
    return x


# ---------------------------------------------------------------------------------------------
# EDM Heun, no churn [EDM Alg. 1]


def heun_floor(model, sig, x, keep=False):
    """d = (x - D) / s; x_e = x + h d; d' = (x_e - D') / s'; x = x + h (d + d') / 2; Euler to 0.

    keep=True records every x_t (written in place by the last operation, out=) and every D
    (copied: it is the model's output) into preallocated tensors.
    """
    B, n = x.shape[0], len(sig) - 1
    if keep:
        xs, Ds = empty_steps(n + 1, x), empty_steps(n, x)
        xs[0] = x
    for i, (s, s_next) in enumerate(zip(sig[:-1], sig[1:])):
        h = s_next - s
        D = model(x, torch.full((B,), s, dtype=x.dtype))
        if keep:
            Ds[i].copy_(D)
        d_ = (x - D) / s
        out = xs[i + 1] if keep else None
        if s_next == 0:
            x = torch.add(x, h * d_, out=out)
        else:
            x_e = x + h * d_
            d_next = (x_e - model(x_e, torch.full((B,), s_next, dtype=x.dtype))) / s_next
            x = torch.add(x, h * (d_ + d_next) / 2, out=out)
    return x


def heun_diffusers(model, sch, x):
    sch.set_timesteps(HEUN_STEPS)
    for t in sch.timesteps:
        x_in = sch.scale_model_input(x, t)  # the network's input; the identity model ignores it
        del x_in
        x = sch.step(model(x, t), t, x).prev_sample
    return x


# ---------------------------------------------------------------------------------------------


def read(traj):
    """What a user of a recorded trajectory does: take the stacked states and estimates."""
    return traj.xs, traj.x0_hats


def time_in_turn(fns: dict, repeats: int) -> dict:
    """Median seconds of each zero-argument function, calls interleaved round-robin."""
    for fn in fns.values():  # warm-up
        fn()
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


LEGEND = """\
Rows: floor = a bare torch loop of the same arithmetic that keeps nothing; floor + recording = the
same loop writing each x_t and x0_hat (D for Heun) straight into preallocated tensors (out=), the
least memory traffic a loop that records can have; diffedu with record=True (timed up to
reading .xs and .x0_hats, as the widgets do) and record=False; diffedu's NaN/inf check after the last
step alone (one sum over the final state; included in the diffedu rows); diffusers' scheduler loop,
which keeps nothing.  us/step is per sampler
step (a Heun step is 2 model calls).  record=False against the floor is the samplers' own
overhead; record=True against floor + recording is what diffedu adds to recording itself;
floor + recording against the floor is what keeping the trajectory costs on this machine."""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=31, help="timed runs of each loop (medians are printed)")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--out", default=None, help="also write the table (with command and machine) to this file")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import diffusers
    from diffusers import DDIMScheduler, HeunDiscreteScheduler

    sched = d.Schedule(d.linear_betas(T))
    alpha_bar = sched.alpha_bar.tolist()
    ts = d.ddim_timesteps(T, DDIM_STEPS, "leading").tolist()

    def ddim_scheduler():
        return DDIMScheduler(num_train_timesteps=T, beta_schedule="linear", clip_sample=False,
                             set_alpha_to_one=True, steps_offset=0)

    def heun_scheduler():
        return HeunDiscreteScheduler(num_train_timesteps=T, beta_schedule="linear", use_karras_sigmas=True,
                                     prediction_type="sample")

    ddim_sch, heun_sch = ddim_scheduler(), heun_scheduler()  # made once: a pipeline keeps its scheduler
    h = heun_scheduler()
    h.set_timesteps(HEUN_STEPS)
    grid = torch.cat([h.sigmas[:1], h.sigmas[1::2]]).double()  # the states' sigmas (diffusers interleaves)
    sig = grid.tolist()

    workloads = {"10,000 2-D points": (10_000, 2), "64 images 3x32x32": (64, 3, 32, 32)}
    lines = [
        f"# sampler overhead: time per step with an identity model, median of {args.repeats} runs, "
        f"{args.threads} torch thread(s), float32",
        f"# {machine()}; load average {os.getloadavg()[0]:.2f} at start; Python {platform.python_version()}, "
        f"torch {torch.__version__}, "
        f"diffusers {diffusers.__version__}, diffedu {d.__version__}; "
        f"{time.strftime('%Y-%m-%d')}",
        "",
        "| sampler | workload | loop | us/step | x floor | x floor + recording |",
        "| --- | --- | --- | ---: | ---: | ---: |",
    ]
    print("\n".join(lines), flush=True)
    for wname, shape in workloads.items():
        x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
        x_edm = grid[0].item() * x
        # check that the three loops compute the same thing before timing them
        ref = ddim_floor(identity, alpha_bar, ts, x)
        torch.testing.assert_close(d.sample_ddim(identity, sched, x, steps=DDIM_STEPS).x, ref, rtol=1e-4, atol=1e-4)
        for _ in range(2):  # the scheduler is made once and reused, as a pipeline does
            torch.testing.assert_close(ddim_diffusers(identity, ddim_sch, x), ref, rtol=1e-4, atol=1e-4)
        ref = heun_floor(identity, sig, x_edm)
        torch.testing.assert_close(d.sample_edm(identity, grid, x_edm, method="heun").x, ref, rtol=1e-4, atol=1e-4)
        for _ in range(2):
            torch.testing.assert_close(heun_diffusers(identity, heun_sch, x_edm), ref, rtol=1e-4, atol=1e-4)
        done_ddim = d.sample_ddim(identity, sched, x, steps=DDIM_STEPS, record=False)
        done_heun = d.sample_edm(identity, grid, x_edm, method="heun", record=False)
        cases = {
            f"DDIM eta=0, {DDIM_STEPS} steps": (DDIM_STEPS, {
                FLOOR: lambda: ddim_floor(identity, alpha_bar, ts, x),
                FLOOR_REC: lambda: ddim_floor(identity, alpha_bar, ts, x, keep=True),
                "**diffedu sample_ddim** (record=True)": lambda: read(d.sample_ddim(identity, sched, x, steps=DDIM_STEPS)),
                "diffedu sample_ddim, record=False": lambda: d.sample_ddim(identity, sched, x, steps=DDIM_STEPS,
                                                                           record=False),
                CHECK: lambda: check_run(done_ddim, "eps_model"),
                "diffusers DDIMScheduler": lambda: ddim_diffusers(identity, ddim_sch, x),
            }),
            f"EDM Heun, {HEUN_STEPS} steps": (HEUN_STEPS, {
                FLOOR: lambda: heun_floor(identity, sig, x_edm),
                FLOOR_REC: lambda: heun_floor(identity, sig, x_edm, keep=True),
                "**diffedu sample_edm** (record=True)": lambda: read(d.sample_edm(identity, grid, x_edm, method="heun")),
                "diffedu sample_edm, record=False": lambda: d.sample_edm(identity, grid, x_edm, method="heun",
                                                                         record=False),
                CHECK: lambda: check_run(done_heun, "denoiser", "sigma"),
                "diffusers HeunDiscreteScheduler": lambda: heun_diffusers(identity, heun_sch, x_edm),
            }),
        }
        for cname, (steps, fns) in cases.items():
            med = time_in_turn(fns, args.repeats)
            floor, floor_rec = med[FLOOR], med[FLOOR_REC]
            for lname, sec in med.items():
                line = (f"| {cname} | {wname} | {lname} | {sec / steps * 1e6:.1f} | {sec / floor:.2f} | "
                        f"{sec / floor_rec:.2f} |")
                lines.append(line)
                print(line, flush=True)
    lines += ["", LEGEND]
    print("\n" + LEGEND)
    if args.out:
        cmd = "python " + " ".join([os.path.relpath(sys.argv[0])] + sys.argv[1:])
        with open(args.out, "w") as f:
            f.write(f"Command: `{cmd}`\n\n")
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
