"""Two probes of the ard-2023 preset's open cells (docs/dynamics.md), on the paper config's splits.

    python experiments/dynamics_open_cells.py drift [--model mlp] [--seeds 3] [--centers "[[0.2, -0.4], [1.9, 0.15]]"]
                                                    [--epochs 100]
    python experiments/dynamics_open_cells.py steps

``drift``: the reference model's M₀ on the overlapping split, then 10-epoch refits on the
unchanged data (no recourse): the change of ‖P − 0.5‖ over train ∪ test after 1, 2, 5, 10, 20,
30 and 50 refits (the decisiveness a model would show without any recourse).
``steps``: on the linearly separable split, the steps the preset's Generic and DiCE take from
every class-0 training point under M₀ (linear and MLP), against T = 100.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _split(name: str, centers: str | None):
    from cfx.experiments import load_config
    from cfx.experiments.kinds.dynamics import _split as split

    cfg = load_config(ROOT / "configs" / "dynamics_paper.yaml")
    dc = next(d for d in cfg.data if d.name == name)
    if centers:
        cfg = load_config(
            ROOT / "configs" / "dynamics_paper.yaml", [f"data=[{{name: {name}, n: 1000, centers: {centers}}}]"]
        )
        dc = cfg.data[0]
    return split(dc, cfg)


def drift(model: str, seeds: int, centers: str | None, epochs: int) -> None:
    import jax
    import numpy as np

    from cfx.dynamics.reference import ReferenceTrainer

    train, test = _split("overlapping", centers)
    X = np.concatenate([train.X, test.X]).astype(np.float32)
    for seed in range(seeds):
        t = ReferenceTrainer(model, initial_epochs=epochs, retrain_epochs=10, combine="probabilities")
        clf = t.initial(train, seed=seed)

        def norm(c):
            return float(np.linalg.norm(np.asarray(jax.nn.softmax(c.raw_logits(X), -1))[:, 1] - 0.5))

        n0, out = norm(clf), []
        for r in range(1, 51):
            clf = t.retrain(clf, train, seed=0)
            if r in (1, 2, 5, 10, 20, 30, 50):
                out.append(f"{r}: {norm(clf) - n0:+.3f}")
        print(f"{model} seed {seed}: ‖P0 − 0.5‖ = {n0:.3f}; change after refits", ", ".join(out), flush=True)


def steps() -> None:
    import jax
    import numpy as np

    import cfx
    import cfx.generators as G
    from cfx.dynamics.reference import ReferenceTrainer, generator_options

    train, test = _split("linearly_separable", None)
    full = np.concatenate([train.X, test.X])
    x = np.asarray(train.X)[np.asarray(train.y) == 0]
    for kind in ("linear", "mlp"):
        clf = ReferenceTrainer(kind, combine="probabilities").initial(train, seed=0)
        f = np.asarray(clf.raw_logits(x))
        for name in ("generic", "dice"):
            gen = G.make(name, **generator_options(name)).with_space(full)
            res = cfx.generate(gen, clf, x, 1, key=jax.random.key(0), max_steps=100)
            st = np.asarray(res.steps).max(1)
            print(
                f"{kind} {name}: converged {float(np.asarray(res.converged).all(1).mean()):.3f}, steps median "
                f"{np.median(st):.0f} / 90th percentile {np.percentile(st, 90):.0f} / max {st.max()} of 100; "
                f"median logit at the factual {np.median(f[:, 1] - f[:, 0]):.1f}",
                flush=True,
            )


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("probe", choices=("drift", "steps"))
    ap.add_argument("--model", default="mlp", choices=("linear", "mlp", "ensemble"))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--centers", default=None, help="overlapping centres, YAML (default: the config's)")
    ap.add_argument("--epochs", type=int, default=100, help="M₀'s epochs")
    a = ap.parse_args()
    drift(a.model, a.seeds, a.centers, a.epochs) if a.probe == "drift" else steps()
