"""Why is DDIM faster? Quality and wall time against NFE for every sampler, on the shipped digits UNet.

Quality is the course's digits "FID" (Fréchet distance in the feature space of the shipped digits
classifier, NOT Inception FID: comparable only within this course) and the recognisable-digit
rate (classifier confidence > 0.9).  Each row samples `--n` digits with the same seed.  The
floor row is real against real: `--n` digits drawn with replacement from the 1797 real ones,
against all 1797, over five draws (mean ± sd); no sampler can be expected to go below it.

    .venv/bin/python benchmarks/fid_table.py [--n 1000] [--threads 2] [--out benchmarks/results/fid_table.md]
"""
from __future__ import annotations

import argparse
import datetime
import statistics

import torch

from diffedu import assets
from diffedu.data import digits
from _machine import machine, write_table  # benchmarks/_machine.py
from diffedu.metrics import RECOGNISABLE_THRESHOLD, digit_features_and_probs, evaluate_sampler, fid_from_features

ROWS = [("ddpm", (1000,), None)] + [("ddim", (10, 20, 50, 100), eta) for eta in (0.0, 1.0)] + \
       [("edm-euler", (10, 20, 50, 100), None), ("edm-heun", (6, 11, 26, 51), None)]


def eta_column(row: dict) -> str:
    """The eta column: the sampler's own eta, else where it sits in DDIM's family (DDPM is eta = 1,
    the ODE samplers are deterministic, eta = 0)."""
    eta = row["eta"] if row["eta"] is not None else (1.0 if row["sampler"] == "ddpm" else 0.0)
    return f"{eta:g}"


def floor(classifier, n: int, repeats: int = 5) -> tuple[list[float], list[float]]:
    """FID and recognisable rate of real digits resampled with replacement, against all real digits."""
    real = digits(classifier.config["image_size"])[0]
    f_ref, p_ref = digit_features_and_probs(real, classifier)
    fids, rates = [], []
    for seed in range(repeats):
        idx = torch.randint(len(real), (n,), generator=torch.Generator().manual_seed(seed))
        fids.append(fid_from_features(f_ref[idx], f_ref))
        rates.append((p_ref[idx].max(1).values > RECOGNISABLE_THRESHOLD).double().mean().item())
    return fids, rates


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1000, help="samples per row")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="benchmarks/results/fid_table.md")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    unet, clf = assets.load_digits_unet(), assets.load_classifier()
    fids, rates = floor(clf, a.n)
    sd = statistics.stdev
    lines = [f"| sampler | eta | steps | NFE | digits FID | recognisable | seconds ({a.n} digits) |",
             "| --- | --- | --- | --- | --- | --- | --- |",
             f"| real vs real (floor) | | | | {statistics.mean(fids):.3f} ± {sd(fids):.3f} | "
             f"{statistics.mean(rates):.3f} ± {sd(rates):.3f} | |"]
    print("\n".join(lines), flush=True)
    for sampler, steps, eta in ROWS:
        for r in evaluate_sampler(unet, sampler, steps=steps, eta=eta, n=a.n, seed=0, classifier=clf):
            line = (f"| {r['sampler']} | {eta_column(r)} | {r['steps']} | {r['nfe']} | {r['fid']:.3f} | "
                    f"{r['recognisable']:.3f} | {r['seconds']:.1f} |")
            print(line, flush=True)
            lines.append(line)
    header = [f"# Digits FID and recognisable rate against NFE (shipped digits UNet)", "",
              f"`.venv/bin/python benchmarks/fid_table.py --n {a.n} --threads {a.threads}`; "
              f"{datetime.date.today()}, {machine()}, torch {torch.__version__}, "
              f"{a.threads} threads.", "",
              "Digits FID = Fréchet distance in the shipped classifier's 64-d feature space, not Inception "
              "FID; comparable only within this course. DDIM uses leading spacing; EDM samplers use Karras "
              "sigmas (rho 7) over the schedule's own sigma range, the eps-model wrapped as a denoiser.", ""]
    write_table(a.out, header, lines)


if __name__ == "__main__":
    main()
