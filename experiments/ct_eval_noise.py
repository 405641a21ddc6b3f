"""How much of a cell's reduction is the evaluation's draw (docs/ct.md, session 33).

Trains run R's baseline and CT exactly as ``cfx run CONFIG`` does (same seeds, so the same models), then
scores the pair with the pooled evaluation K times, each with other evaluation seeds (the config's seed
plus k: new (factual, target) pairs and rows), under ``draws: shared`` and ``draws: per_energy``. Prints,
per draw mode, each evaluation's IP reduction with its within-run ± (the paper's ±) and the sd over the K
evaluations: the part of a single model's reduction that the ± does not show.

    python experiments/ct_eval_noise.py configs/ct_paper_synthetic.yaml linearly_separable 2 5
"""

from __future__ import annotations

import sys

import numpy as np

from cfx.experiments import load_config
from cfx.experiments.kinds import get_kind
from cfx.experiments.kinds.ct import _ct_config, fit_cell
from cfx.experiments.kinds.ct.reference import evaluate_cell
from cfx.training import search_constraints
from cfx.training.pool import pooled_reduction


def main(config: str, data: str, run: int, k: int) -> None:
    cfg = load_config(config, [f"data=[{data}]", "modes=[single]", f"runs={run + 1}"])
    dc = cfg.data[0]
    train, test, protected = get_kind("ct").check(cfg)[(dc.key, run)]
    models = {}
    for variant in ("baseline", "ct"):
        ct = _ct_config(cfg, dc, variant, "single", protected)
        models[variant] = fit_cell(cfg, dc, train, ct, run).classifier
    constraints = search_constraints(train, _ct_config(cfg, dc, "ct", "single", protected))
    for draws in ("shared", "per_energy"):
        reds = []
        for j in range(k):
            c = cfg.replace(seed=cfg.seed + 1000 * (j + 1), evaluation=cfg.evaluation.replace(draws=draws))
            rounds = {
                v: evaluate_cell(c, dc, "single", v, run, m, train, test, constraints)[1]["round_ip"]
                for v, m in models.items()
            }
            red = pooled_reduction(rounds["baseline"], rounds["ct"])
            reds.append(red["reduction"])
            print(f"{data} run {run} draws={draws} eval {j}: IP {red['reduction']:.1f} ± {red['se']:.2f}", flush=True)
        print(
            f"{data} run {run} draws={draws}: mean {np.mean(reds):.1f}, sd over {k} evaluations {np.std(reds, ddof=1):.2f}"
        )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
