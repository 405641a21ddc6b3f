"""Counterfactual generators: frozen PyTree dataclasses of hyperparameters.

Use a class directly (``cfx.generators.Generic(cost=0.5)``) or by registry name
(``cfx.generators.make("wachter", data=train)``).
"""

from __future__ import annotations

import difflib

from cfx.generators.base import CONVERGENCE, OPTIMIZERS, Generator, Penalty
from cfx.generators.dice import DiCE
from cfx.generators.generic import Generic, Wachter
from cfx.generators.greedy import Greedy
from cfx.generators.mitigation import ClaPROAR, Gravitational

REGISTRY: dict[str, type[Generator]] = {
    "generic": Generic,
    "wachter": Wachter,
    "gravitational": Gravitational,
    "claproar": ClaPROAR,
    "dice": DiCE,
    "greedy": Greedy,
    "conservative": Generic,
}
ALIASES = {"schut": "greedy"}
# Search options a registry entry implies (the mitigation "conservative" is Generic at tau = 0.9).
SEARCH_DEFAULTS: dict[str, dict] = {"conservative": {"threshold": 0.9}}
_DESCRIPTIONS = {"conservative": "SaTML 2023 mitigation: Generic with a conservative threshold tau = 0.9"}


def _canonical(name: str) -> str:
    key = ALIASES.get(name.lower(), name.lower())
    if key not in REGISTRY:
        close = difflib.get_close_matches(key, list(REGISTRY) + list(ALIASES), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown generator {name!r}{hint}; known: {sorted(REGISTRY) + sorted(ALIASES)}")
    return key


def make(name: str, data=None, **hyperparams) -> Generator:
    """Build a registered generator; ``data`` (the training Dataset) is required by the ones
    that summarise it (wachter: MAD, gravitational: target-class samples).

    Some entries also imply search options (``conservative`` is Generic searched at
    τ = 0.9): pass ``**search_defaults(name)`` to :func:`cfx.generate` with the generator.
    """
    cls = REGISTRY[_canonical(name)]
    if hasattr(cls, "from_data"):
        if data is None:
            raise ValueError(f"generator {name!r} needs the training data: make({name!r}, data=train)")
        return cls.from_data(data, **hyperparams)
    return cls(**hyperparams)


def search_defaults(name: str) -> dict:
    """Search options implied by a registry entry, e.g. ``{"threshold": 0.9}`` for conservative."""
    return dict(SEARCH_DEFAULTS.get(_canonical(name), {}))


def describe() -> dict[str, str]:
    """One-line description per registry name."""
    out = {name: _DESCRIPTIONS.get(name, cls.description) for name, cls in REGISTRY.items()}
    out.update({alias: f"alias of {target!r}" for alias, target in ALIASES.items()})
    return out


__all__ = [
    "CONVERGENCE", "OPTIMIZERS", "Generator", "Penalty", "Generic", "Wachter", "Gravitational",
    "ClaPROAR", "DiCE", "Greedy", "REGISTRY", "make", "search_defaults", "describe",
]
