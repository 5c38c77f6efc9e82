"""Paired seeds: the confidence interval of ours - TRL, and pooling runs of train_speed.

``bench/train_speed.py --first-seed K`` adds seeds to an earlier run's sample without
repeating its own: the pairing is deterministic, so seed k gives the same held-out losses in
every run. This pools the runs' last-line JSON objects into one paired comparison, after
checking that they trained the same thing and that no seed is counted twice:

    python bench/seeds.py run_seeds_0_7.out run_seeds_8_15.out

Each argument is a file holding a train_speed run's output (its last JSON line is read). The
last line printed here is a JSON object with the pooled seeds, both means, the per-seed
differences, their 95% interval and ``heldout_loss_not_worse_than_trl``.
The differences are taken from the runs' per-seed losses as printed (4 decimals), so a
pooled figure can differ from a single run's own in the last digit.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

# two-sided 95% Student t quantiles by degrees of freedom (the paired seeds are few)
T95 = {
    1: 12.706,
    2: 4.303,
    3: 3.182,
    4: 2.776,
    5: 2.571,
    6: 2.447,
    7: 2.365,
    8: 2.306,
    9: 2.262,
    10: 2.228,
    11: 2.201,
    12: 2.179,
    13: 2.160,
    14: 2.145,
    15: 2.131,
    16: 2.120,
    17: 2.110,
    18: 2.101,
    19: 2.093,
    20: 2.086,
    21: 2.080,
    22: 2.074,
    23: 2.069,
    24: 2.064,
    25: 2.060,
    26: 2.056,
    27: 2.052,
    28: 2.048,
    29: 2.045,
    30: 2.042,
}

# what must agree between runs for their seeds to be one sample (the settings a run's JSON
# records; a run from before "settings" was recorded is checked on the rest)
SAME_IN_EVERY_RUN = ("model", "task", "examples", "epochs", "device", "heldout_rows", "settings")


def t95(degrees_of_freedom: int) -> float:
    """Two-sided 95% Student t quantile; past the table, its first-order expansion in 1/df."""
    if degrees_of_freedom < 1:
        raise ValueError("a t quantile needs at least one degree of freedom")
    if degrees_of_freedom in T95:
        return T95[degrees_of_freedom]
    z = 1.959964
    return z + (z**3 + z) / (4 * degrees_of_freedom)


def paired_ci(differences: list[float]) -> list[float] | None:
    """95% confidence interval of the mean per-seed difference (None with one seed)."""
    if len(differences) < 2:
        return None
    half = t95(len(differences) - 1) * statistics.stdev(differences) / math.sqrt(len(differences))
    mean = statistics.fmean(differences)
    return [round(mean - half, 4), round(mean + half, 4)]


def last_json_line(path: Path) -> dict:
    """The last line of a train_speed output file that is a JSON object."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ValueError(f"{path}: cannot be read ({exc.strerror})") from exc
    for line in reversed(lines):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}: its last JSON line is not valid JSON ({exc})") from exc
    raise ValueError(f"{path}: no JSON line (a train_speed run that finished ends with one)")


def run_seeds(run: dict, path: Path) -> list[int]:
    """The seeds a run trained, checked against the losses it lists."""
    try:
        first, count = int(run.get("first_seed", 0)), int(run["seeds"])
        ours, trl = run["ours"]["heldout_losses"], run["trl"]["heldout_losses"]
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{path}: field {exc} missing (not a paired train_speed run)") from exc
    if not (len(ours) == len(trl) == count):
        raise ValueError(
            f"{path}: field seeds says {count} but it lists {len(ours)} and {len(trl)} losses"
        )
    return list(range(first, first + count))


def pool_runs(runs: list[tuple[Path, dict]]) -> dict:
    """One paired comparison over every run's seeds; ValueError naming the file and field
    when runs trained different things or count a seed twice."""
    if not runs:
        raise ValueError("no runs to pool")
    first_path, first = runs[0]
    seen: dict[int, Path] = {}
    ours: list[float] = []
    trl: list[float] = []
    for path, run in runs:
        seeds = run_seeds(run, path)  # first: it checks the fields the rest reads
        for field in SAME_IN_EVERY_RUN:
            if field in first and field in run and run[field] != first[field]:
                raise ValueError(
                    f"{path}: field {field} is {run[field]!r} but {first_path} has "
                    f"{first[field]!r}; seeds of different runs pool only when they trained "
                    "the same thing"
                )
        for side in ("ours", "trl"):
            if run[side].get("dtype") != first[side].get("dtype"):
                raise ValueError(
                    f"{path}: field {side}.dtype is {run[side].get('dtype')!r} but "
                    f"{first_path} has {first[side].get('dtype')!r}"
                )
        for seed in seeds:
            if seed in seen:
                raise ValueError(f"{path}: seed {seed} is already in {seen[seed]}")
            seen[seed] = path
        ours += run["ours"]["heldout_losses"]
        trl += run["trl"]["heldout_losses"]
    differences = [a - b for a, b in zip(ours, trl, strict=True)]
    ours_mean, trl_mean = statistics.fmean(ours), statistics.fmean(trl)
    return {
        "model": first["model"],
        "task": first["task"],
        "dtype": first["ours"].get("dtype"),
        "cpu_flags": sorted({run.get("cpu_flags", "") for _, run in runs}),
        "seeds": sorted(seen),
        "ours_heldout_loss": round(ours_mean, 4),
        "trl_heldout_loss": round(trl_mean, 4),
        "heldout_loss_not_worse_than_trl": ours_mean <= trl_mean,
        "heldout_loss_differences": [round(d, 4) for d in differences],
        "heldout_loss_difference_mean": round(statistics.fmean(differences), 4),
        "heldout_loss_difference_ci95": paired_ci(differences),
        "runs": [str(path) for path, _ in runs],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="train_speed output files")
    args = parser.parse_args(argv)
    try:
        pooled = pool_runs([(path, last_json_line(path)) for path in args.runs])
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    d = pooled["heldout_loss_differences"]
    print(
        f"{len(d)} seeds {pooled['seeds'][0]}..{pooled['seeds'][-1]} ({pooled['dtype']}): "
        f"held-out loss ours {pooled['ours_heldout_loss']:.4f}, TRL "
        f"{pooled['trl_heldout_loss']:.4f}; paired difference ours - TRL: mean "
        f"{pooled['heldout_loss_difference_mean']:+.4f}, 95% CI "
        f"{pooled['heldout_loss_difference_ci95']}; ours lower on "
        f"{sum(x < 0 for x in d)}, equal on {sum(x == 0 for x in d)}, higher on "
        f"{sum(x > 0 for x in d)}"
    )
    print(json.dumps(pooled))
    return 0


if __name__ == "__main__":
    sys.exit(main())
