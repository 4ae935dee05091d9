"""What does a GAN buy, and why is DDIM faster? One MNIST model, every sampler, the GAN, and guidance.

Rows (each samples --n images with the same seed; classes 0-9 in turn where a label is given):
  * real vs real (floor): --n train digits against the 1,000 test digits, five draws (mean ± sd)
  * the shipped class-conditional UNet (`assets.load_mnist_unet()`) at w = 0, each class in turn (classes
    0-9 cycling, so the rows sample the model's p(x) = sum_c p(c) p(x | c) with MNIST's uniform p(c)):
    DDPM 1000, DDIM eta 0 and 1 at --ddim-steps, EDM Heun at 11/21/51 network calls
  * the same network's null class (its unconditional model, trained on the 10% of labels dropped), DDIM 50
  * the shipped DCGAN (`diffedu.gan.load_mnist_gan()`): one network call per image
  * guided DDIM (--guided-steps) at w in {0, 1, 3}: class accuracy (the classifier agrees with the asked-for
    class) against FID, the quality/diversity trade-off of classifier-free guidance [CFG Fig. 1]
Columns: MNIST FID (Fréchet distance in the shipped MNIST classifier's 64-d features; NOT Inception
FID, comparable only within this course), the recognisable rate (classifier confidence > 0.9), class
accuracy where a class was asked for, NFE and seconds per 1,000 images on this machine.

    .venv/bin/python benchmarks/mnist_table.py [--n 1000] [--threads 2] [--skip ddpm] [--out benchmarks/results/mnist_table.md]

A killed run resumes: each row is stored in OUT.rows.json as soon as it is measured, and a rerun
with the same --n measures only the rows still missing (--fresh: all of them).
--skip leaves out the rows of the named samplers (DDPM 1000 at n = 1000 is a million network
evaluations, over an hour on 2 CPU cores); the file then says which rows are missing.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import time

import torch

from diffedu import assets
from diffedu.data import mnist
from diffedu.gan import load_mnist_gan
from diffedu.metrics import RECOGNISABLE_THRESHOLD, digit_features_and_probs, evaluate_sampler, fid_from_features
from _machine import machine, write_table  # benchmarks/_machine.py

SAMPLERS = [("ddpm", None, None), ("ddim", 0.0, None), ("ddim", 1.0, None), ("edm-heun", None, (6, 11, 26))]
DDPM_STEPS = (1000,)
GUIDANCE = (0.0, 1.0, 3.0)


def score(x: torch.Tensor, clf, f_ref) -> dict:
    """FID and recognisable rate of images that were not sampled by a diffusion sampler (real digits, the GAN)."""
    f, p = digit_features_and_probs(x, clf)
    return dict(fid=fid_from_features(f, f_ref), recognisable=(p.max(1).values > RECOGNISABLE_THRESHOLD).double().mean().item())


def line(name: str, eta, steps, nfe, r: dict, seconds) -> str:
    acc = f"{r['accuracy']:.3f}" if "accuracy" in r else ""
    return (f"| {name} | {'' if eta is None else f'{eta:g}'} | {steps} | {nfe} | {r['fid']:.3f} | {r['recognisable']:.3f} | "
            f"{acc} | {seconds:.1f} |")


ROWS_SUFFIX = ".rows.json"   # beside --out: every measured row, so a killed run resumes where it stopped


def load_rows(path: str, n: int) -> dict:
    """The rows a run with the same --n already measured (key -> table line); a file for another n is ignored."""
    try:
        with open(path) as f:
            stored = json.load(f)
    except FileNotFoundError:
        return {}
    return stored["rows"] if stored.get("n") == n else {}


def save_rows(path: str, n: int, rows: dict) -> None:
    """Write the measured rows atomically (a kill leaves the old file or the new one, never half of one)."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(dict(n=n, rows=rows), f, indent=1)
    os.replace(tmp, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1000, help="samples per row")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip", nargs="*", default=[], choices=[name for name, _, _ in SAMPLERS],
                    help="samplers whose rows to leave out (the file says so)")
    ap.add_argument("--ddim-steps", type=int, nargs="+", default=[10, 20, 50, 100], help="DDIM rows' step counts")
    ap.add_argument("--guided-steps", type=int, default=50, help="DDIM steps of the guided rows")
    ap.add_argument("--out", default="benchmarks/results/mnist_table.md")
    ap.add_argument("--fresh", action="store_true",
                    help="measure every row again (default: reuse the rows OUT.rows.json holds for the same --n)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    gan, clf = load_mnist_gan(), assets.load_mnist_classifier()
    try:
        unet = assets.load_mnist_unet()
    except ValueError as err:   # not shipped yet: the floor and the GAN rows only, said in the file
        unet, missing = None, str(err).replace(str(assets.ASSETS.parent) + '/', '')
    test_x, train_x = mnist("test")[0], mnist("train")[0]
    f_ref, _ = digit_features_and_probs(test_x, clf)
    per = 1000 / a.n
    rows_path = os.path.splitext(a.out)[0] + ROWS_SUFFIX
    done = {} if a.fresh else load_rows(rows_path, a.n)
    cycling = torch.arange(a.n) % 10                      # each class in turn

    def specs():
        """(key, name, measure) for every row of the table, in its order; measure() returns the table line."""
        def floor():
            rs = [score(train_x[torch.randint(len(train_x), (a.n,), generator=torch.Generator().manual_seed(s))],
                       clf, f_ref) for s in range(5)]
            fids = [r["fid"] for r in rs]
            return (f"| real vs real (floor) | | | | {statistics.mean(fids):.3f} ± {statistics.stdev(fids):.3f} | "
                    f"{statistics.mean(r['recognisable'] for r in rs):.3f} | | |")
        yield "floor", floor
        for sampler, eta, steps in [row for row in SAMPLERS if row[0] not in a.skip] if unet is not None else ():
            for k in steps or (DDPM_STEPS if sampler == "ddpm" else tuple(a.ddim_steps)):
                def one(sampler=sampler, eta=eta, k=k):
                    r, = evaluate_sampler(unet, sampler, steps=(k,), eta=eta, n=a.n, seed=0, classifier=clf,
                                          reference=test_x, labels=cycling)
                    return line(sampler, eta, r["steps"], r["nfe"], r, r["seconds"] * per)
                yield f"{sampler} eta={eta} steps={k}", one
        if unet is not None:
            def null():
                r, = evaluate_sampler(unet, "ddim", steps=(50,), eta=0.0, n=a.n, seed=0, classifier=clf, reference=test_x)
                return line("ddim, null class (unconditional)", 0.0, 50, r["nfe"], r, r["seconds"] * per)
            yield "null class ddim 50", null

        def dcgan():
            t0 = time.perf_counter()
            x = gan.sample(a.n, generator=torch.Generator().manual_seed(0))
            return line("DCGAN", None, 1, 1, score(x, clf, f_ref), (time.perf_counter() - t0) * per)
        yield "dcgan", dcgan
        for w in GUIDANCE if unet is not None else ():
            def guided(w=w):
                r, = evaluate_sampler(unet, "ddim", steps=(a.guided_steps,), eta=0.0, n=a.n, seed=0, classifier=clf,
                                      reference=test_x, labels=cycling, guidance=w)
                return line(f"ddim, guided w = {w:g}", 0.0, a.guided_steps, r["nfe"] * (2 if w else 1), r,
                            r["seconds"] * per)
            yield f"guided w={w:g} steps={a.guided_steps}", guided

    header = ["# MNIST: FID, recognisable rate and class accuracy against NFE; the DCGAN baseline; guidance", "",
              f"`.venv/bin/python benchmarks/mnist_table.py --n {a.n} --threads {a.threads}"
              f" --ddim-steps {' '.join(map(str, a.ddim_steps))} --guided-steps {a.guided_steps}"
              f"{' --skip ' + ' '.join(a.skip) if a.skip else ''}`; {datetime.date.today()}, "
              f"{machine()}, torch {torch.__version__}, {a.threads} threads. A killed run resumes: rerun the same "
              f"command (the rows measured so far are in `{os.path.basename(rows_path)}`; `--fresh` measures all again).",
              "",
              "MNIST FID = Fréchet distance in the shipped MNIST classifier's 64-d feature space against the 1,000 test "
              "digits; NOT Inception FID, comparable only within this course. The sampler rows ask for each class in "
              "turn at w = 0 (the conditional model); the null-class row is the same network's unconditional model. "
              "Class accuracy: the classifier reads the asked-for class. NFE counts network calls per image: a guided "
              "step with w > 0 is one call on a doubled batch, counted as 2.", ""]
    if unet is None:
        header += [f"The diffusion rows are missing: {missing}.", ""]
    elif a.skip:
        header += [f"Not measured in this run (--skip): the rows of {', '.join(a.skip)}.", ""]
    table = ["| sampler | eta | steps | NFE | MNIST FID | recognisable | class accuracy | seconds / 1000 images |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    all_specs = list(specs())
    for key, measure in sorted(all_specs, key=lambda spec: spec[0].startswith("ddpm")):  # the hour-long row last
        if key not in done:
            done[key] = measure()
            save_rows(rows_path, a.n, done)
        print(done[key], flush=True)
        measured = [done[k] for k, _ in all_specs if k in done]
        todo = [k for k, _ in all_specs if k not in done]
        write_table(a.out, header + ([f"Still being measured: {', '.join(todo)}.", ""] if todo else []),
                    table + measured)


if __name__ == "__main__":
    main()
