"""How often JAX traced a program, counted from JAX's own monitoring events (for tests only).

Production code keeps no counters: every ``jax.jit`` trace records the event
``/jax/core/compile/jaxpr_trace_duration`` with the traced function's name, and this module
listens for it (from its import on). A test reads a count before and after and asserts no new
trace (no recompilation), or exactly the programs it expects:

    before = compile_counts.search()
    cfx.generate(...)                      # new parameters, same shapes
    assert compile_counts.search() == before
"""

from __future__ import annotations

import collections
import threading

import jax.monitoring

_TRACE = "/jax/core/compile/jaxpr_trace_duration"
_counts: collections.Counter = collections.Counter()
_lock = threading.Lock()


def _listen(event: str, duration: float, **kwargs) -> None:
    if event == _TRACE:
        with _lock:
            _counts[kwargs.get("fun_name", "")] += 1


jax.monitoring.register_event_duration_secs_listener(_listen)


def traces(*names: str) -> int:
    """Traces of the functions called ``names`` (every function's when none is given) since this module loaded."""
    with _lock:
        return sum(_counts.values()) if not names else sum(_counts[n] for n in names)


# the programs of one part of cfx, by the names of their jitted functions
SEARCH = ("_search_entry", "_start_entry", "_round_entry", "_finish_entry")  # cfx.generate's programs (search/_core)
CLASSIFIER = ("_logits", "_probs")  # Classifier.logits / .probs
FIT = ("_run_epoch",)  # cfx.models.fit's epoch
CT = ("counterfactual_step", "ct_epoch")  # cfx.training's epoch
SAMPLING = ("_conditional_samples", "_per_target_samples")  # cfx.sampling's chains
DYNAMICS = ("_draw", "_system_keys", "_move", "_evaluate", "_masked_test")  # cfx.dynamics' round steps, MMD test


def search() -> int:
    """Programs :func:`cfx.generate` compiled (each is traced once, then kept on its abstract signature)."""
    return traces(*SEARCH)


def classifier() -> int:
    return traces(*CLASSIFIER)


def fit() -> int:
    return traces(*FIT)


def ct() -> int:
    return traces(*CT)


def sampling() -> int:
    return traces(*SAMPLING)


def dynamics() -> int:
    """cfx.dynamics' own jitted functions (a round's draw, keys and move, the state's metrics, the MMD test)."""
    return traces(*DYNAMICS)
