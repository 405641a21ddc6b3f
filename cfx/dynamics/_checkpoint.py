"""Checkpoints of :func:`cfx.dynamics.simulate`: a round's state (X, y, model parameters,
fitted generator leaves) as flat arrays, restored into templates of the same structure and
dtypes so that a resumed run compiles nothing new."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from cfx.generators.base import Generator


def _fitted_fields(gen: Generator) -> list[str]:
    return [f.name for f in dataclasses.fields(gen) if f.metadata.get("fitted")]


def _state_arrays(systems: list[dict]) -> dict:
    out = {}
    for g, s in enumerate(systems):
        out[f"g{g}_X"], out[f"g{g}_y"] = np.asarray(s["X"]), np.asarray(s["y"])
        for i, leaf in enumerate(jax.tree_util.tree_leaves(s["clf"].params)):
            out[f"g{g}_p{i}"] = np.asarray(leaf)
        fitted = {f: getattr(s["gen"], f) for f in _fitted_fields(s["gen"])}
        for i, leaf in enumerate(jax.tree_util.tree_leaves(fitted)):
            out[f"g{g}_f{i}"] = np.asarray(leaf)
    return out


def _restore(systems: list[dict], arrays: dict) -> list[dict]:
    """The systems with X, y, parameters and fitted generator leaves from a checkpoint
    (the templates fix structure and dtypes, so nothing recompiles after a resume)."""
    out = []
    for g, s in enumerate(systems):

        def load(tree, tag):
            leaves, treedef = jax.tree_util.tree_flatten(tree)
            new = [jnp.asarray(arrays[f"g{g}_{tag}{i}"], jnp.asarray(leaf).dtype) for i, leaf in enumerate(leaves)]
            return jax.tree_util.tree_unflatten(treedef, new)

        fitted = load({f: getattr(s["gen"], f) for f in _fitted_fields(s["gen"])}, "f")
        out.append(
            {
                **s,
                "X": jnp.asarray(arrays[f"g{g}_X"], jnp.float32),
                "y": jnp.asarray(arrays[f"g{g}_y"], jnp.int32),
                "clf": s["clf"].replace(load(s["clf"].params, "p")),
                "gen": s["gen"].replace(**fitted),
            }
        )
    return out


def _round_path(prefix, rep: int, t: int) -> tuple:
    return (*prefix, f"rep{rep:03d}", f"r{t:03d}")


def _resume(checkpoint, prefix, rep: int, rounds: int, initial: list[dict]):
    """(systems, first round to run, saved history rows, stop record) of repetition ``rep``:
    the initial systems and round 0 without a checkpoint, else the state of the last saved round."""
    if checkpoint is None:
        return initial, 0, [], None
    latest = next((t for t in range(rounds, -1, -1) if checkpoint.done(_round_path(prefix, rep, t))), None)
    if latest is None:
        return initial, 0, [], None
    rows, halted = [], None
    for t in range(latest + 1):
        rec = checkpoint.load(_round_path(prefix, rep, t))
        rows += rec["rows"]
        halted = rec.get("stopped") or halted
    return _restore(initial, checkpoint.load_arrays(_round_path(prefix, rep, latest))), latest + 1, rows, halted
