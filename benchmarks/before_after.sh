#!/usr/bin/env bash
# Before/after a change, in one run on one machine: sampler overhead and widget latency (alternating,
# two rounds each), then the strict nbval time of each notebook (before, after, notebook by notebook).
#
#   bash benchmarks/before_after.sh REV [OUT_DIR]     # REV: the commit to compare the working tree with
#
# REV is checked out as a git worktree and imported through PYTHONPATH with this checkout's .venv,
# so both sides use the same installed packages.  Results go to OUT_DIR (default /tmp/before_after).
set -u
rev=${1:?usage: bash benchmarks/before_after.sh REV [OUT_DIR]}
out=${2:-/tmp/before_after}
here=$(cd "$(dirname "$0")/.." && pwd)
py=$here/.venv/bin/python
base=$(mktemp -d)/base
git -C "$here" worktree add -f --detach "$base" "$rev" -q
trap 'git -C "$here" worktree remove --force "$base"' EXIT
mkdir -p "$out"
side_dir() { if [ "$1" = before ]; then echo "$base"; else echo "$here"; fi; }
for round in 1 2; do
  for side in before after; do
    d=$(side_dir $side)
    (cd "$d" && PYTHONPATH=$d $py benchmarks/sampler_overhead.py --repeats 11 > "$out/overhead_${side}_$round.txt" 2>&1)
    (cd "$d" && PYTHONPATH=$d $py benchmarks/widget_latency.py > "$out/widget_${side}_$round.txt" 2>&1)
  done
done
: > "$out/nbval_times.txt"
for nb in "$here"/notebooks/0*.ipynb; do
  name=$(basename "$nb" .ipynb)
  for side in before after; do
    d=$(side_dir $side)
    start=$(date +%s%N)
    (cd "$d" && PYTHONPATH=$d $py -m pytest --nbval --nbval-current-env --nbval-sanitize-with notebooks/sanitize.cfg \
        -q -p no:cacheprovider "notebooks/$name.ipynb" > "$out/nbval_${side}_$name.txt" 2>&1)
    rc=$?
    echo "$side $name rc=$rc $(( ($(date +%s%N) - start) / 1000000 )) ms" >> "$out/nbval_times.txt"
  done
done
cat "$out/nbval_times.txt"
