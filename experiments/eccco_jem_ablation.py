"""Which training option moves an LS JEM's peakedness (docs/eccco.md, session 33): single JEMs
trained as ``preset: eccco-2024`` trains them (fresh buffer), three seeds per variant, each
scored by :func:`eccco_jem_peak.peak` (median distance of the metric sampler's kept samples to the
nearest class centre; the reference's JEMs: 0.16–0.52).

    python experiments/eccco_jem_ablation.py preset glorot no_epoch_pass shuffle

Variants: ``preset`` (fixed batches, the evaluation pass, flax's LeCun-normal init), ``glorot``
(Flux's Glorot-uniform kernels and zero biases), ``no_epoch_pass``, ``shuffle`` (a new batch order
every epoch).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cfx.models  # noqa: E402
import cfx.models.schedule as schedule  # noqa: E402
import cfx.sampling  # noqa: E402
from cfx.experiments import parse_config  # noqa: E402
from cfx.experiments.kinds.eccco.runner import _fit_kwargs, check, model_spec  # noqa: E402
from eccco_glorot import glorot  # noqa: E402
from eccco_jem_peak import peak  # noqa: E402


class _GlorotInit:
    """The model's forward pass with Flux's initialisation (hashable like the wrapped one)."""

    def __init__(self, inner):
        self._inner = inner

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def __hash__(self):
        return hash(self._inner)

    def __eq__(self, other):
        return isinstance(other, _GlorotInit) and other._inner == self._inner

    def __call__(self, *args, **kwargs):
        return self._inner(*args, **kwargs)

    def init(self, key, d):
        return glorot(self._inner.init(key, d), key)


def main() -> None:
    cfg = parse_config(
        {
            "kind": "eccco",
            "name": "ablation",
            "preset": "eccco-2024",
            "data": [{"name": "linearly_separable"}],
            "runs": 1,
        }
    )
    fit = check(cfg)[("linearly_separable", 0)][0]
    kw = _fit_kwargs(model_spec(cfg.data[0], next(m for m in cfg.models if m.key == "jem")))
    lo, hi = cfx.sampling.scalar_bounds(fit.X)
    build = schedule._build
    for name in sys.argv[1:]:
        opts = {"batch_order": "shuffle" if name == "shuffle" else "fixed", "epoch_pass": name != "no_epoch_pass"}
        schedule._build = build
        if name == "glorot":
            schedule._build = lambda *a, **k: (lambda r: (_GlorotInit(r[0]), *r[1:]))(build(*a, **k))
        scores = [
            peak(cfx.models.fit_scheduled(fit, "jem", seed=100 + s, **opts, **kw).params, lo, hi) for s in range(3)
        ]
        print(f"{name:14s} peak {np.round(scores, 3).tolist()} mean {np.mean(scores):.3f}", flush=True)
    schedule._build = build


if __name__ == "__main__":
    main()
