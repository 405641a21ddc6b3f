"""What the sampler choice changes: the counterfactuals of a finished ``preset: eccco-2024`` run,
scored against (a) the reference's per-target samples (as the run did) and (b) cfx's per-class
cached samples (``cfx.sampling.conditional_samples``) of the same models.

    python experiments/eccco_sampler_effect.py RESULTS_DIR [--run 0]

Prints unfaithfulness in the reference normalisation (keep / n_chains × mean L2) per data set,
model and generator.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

import cfx.sampling
from cfx.experiments import load_config
from cfx.experiments.kinds.eccco.runner import _key, _model, _split, cell_path, model_run
from cfx.experiments.progress import Progress
from cfx.experiments.store import Store


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("results", type=Path)
    ap.add_argument("--run", type=int, default=0)
    args = ap.parse_args()
    cfg = load_config(args.results / "config.yaml")
    store = Store(args.results)
    s, r, rows = cfg.sampling, args.run, []
    for dc in cfg.data:
        split = _split(dc, cfg, model_run(cfg, r))
        fit = split[0]
        for mc in cfg.models:
            conf, _, _ = _model(cfg, store, dc, mc, model_run(cfg, r), split, Progress(total=0, enabled=False))
            cached = np.asarray(
                cfx.sampling.conditional_samples(
                    conf, fit, key=_key(cfg.seed, r, "cache", dc.key), n_chains=s.n_chains, steps=s.steps, keep=s.keep
                )
            )
            for gc in cfg.generators:
                rec = store.load(cell_path(dc.key, mc.key, gc.key, r))
                arr = store.load_arrays(cell_path(dc.key, mc.key, gc.key, r))
                cf, t = np.asarray(arr["counterfactuals"])[:, 0], np.asarray(arr["target"])
                share = s.keep / s.n_chains
                per_class = share * np.linalg.norm(cached[t] - cf[:, None], axis=-1).mean()
                rows.append(
                    dict(
                        dataset=dc.key,
                        model=mc.key,
                        generator=gc.key,
                        per_target=rec["metrics"]["unfaithfulness_ref"]["mean"],
                        per_class=per_class,
                    )
                )
    out = pd.DataFrame(rows)
    print(
        out.pivot_table(index=["dataset", "model"], columns="generator", values=["per_target", "per_class"])
        .round(3)
        .to_string()
    )


if __name__ == "__main__":
    main()
