"""Reproduce the ECCCo tables (Altmeyer et al., AAAI 2024): a thin wrapper over ``cfx.experiments.run``.

Runs an ``eccco`` config (default ``configs/eccco.yaml``, the paper's settings; the optional
data sets MNIST, GMSC and California run when their files are in the data directory) and
prints the table (per data set: model x generator, unfaithfulness, implausibility, validity,
cost, set size), the figures written and where the time went.

    python experiments/eccco.py                                   # paper settings
    python experiments/eccco.py --config configs/eccco_smoke.yaml --out /tmp/eccco_smoke
    python experiments/eccco.py --config configs/eccco_quick.yaml --resume
    python experiments/eccco.py --set runs=1 --set n_factuals=50
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cfx.experiments

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=str(ROOT / "configs" / "eccco.yaml"))
    p.add_argument("--out", default=None, help="results folder (default: results/<name>)")
    p.add_argument("--data-dir", default=None, help="where MNIST / GMSC / California files are read from")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run of the same config")
    p.add_argument("--force", action="store_true", help="delete an existing results folder and start over")
    args = p.parse_args(argv)

    start = time.perf_counter()
    report = cfx.experiments.run(args.config, overrides=args.set, out=args.out, resume=args.resume, force=args.force,
                                 data_dir=args.data_dir)
    wall = time.perf_counter() - start
    print(report.summary)
    for fig in report.figures:
        print(f"figure: {fig}")
    timings, models = report.tables["timings"], report.tables["models"]
    print(f"\nwall {wall:.1f} s (this call; a resumed run skips finished cells): training "
          f"{models['train_s'].sum():.1f} s, conditional sampling {models['sampling_s'].sum():.1f} s, "
          f"search {timings['runtime_s'].sum():.1f} s + compile {timings['compile_s'].sum():.1f} s "
          f"over {len(timings)} cells -> {report.out_dir}")
    return report


if __name__ == "__main__":
    main()
