"""cfx.registry.Registry, the one registry type, and the model registry built on it."""

from __future__ import annotations

import numpy as np
import pytest

import cfx
from cfx.registry import Registry, UnknownNameError


class _E:
    """An entry with a docstring."""


def test_register_get_replace_names_describe():
    r = Registry("widget", {"b": 2}, aliases={"Bee": "b"}, describe=lambda e: f"value {e}")
    assert r.register("A", 1) == 1 and r.get("a") == 1 and r["A"] == 1 and "a" in r and "BEE" in r
    assert r.get("bee") == 2 and r.get("nope", None) is None and r.get(None, 0) == 0  # dict.get's default
    with pytest.raises(ValueError, match="widget named 'a' is already registered; pass replace=True"):
        r.register("a", 3)
    r.replace("a", 3)
    assert r["a"] == 3 and r.names() == ["a", "b"] and r.names(aliases=True) == ["a", "b", "bee"]
    assert r.describe() == {"b": "value 2", "a": "value 3", "bee": "alias of 'b'"}
    assert dict(r) == {"b": 2, "a": 3} and len(r) == 2


def test_unknown_name_lists_the_names_and_is_a_value_and_key_error():
    r = Registry("widget", {"alpha": _E(), "beta": _E()})
    with pytest.raises(
        UnknownNameError,
        match=r"unknown widget 'alpah' \(did you mean 'alpha'\?\); known: "
        r"\['alpha', 'beta'\]",
    ) as e:
        r.get("alpah")
    assert isinstance(e.value, ValueError) and isinstance(e.value, KeyError)
    with pytest.raises(KeyError):
        r["gamma"]
    with pytest.raises(TypeError, match="widget name must be a str"):
        r.get(3)
    assert r.describe() == {"alpha": "An entry with a docstring.", "beta": "An entry with a docstring."}


def test_check_refuses_a_wrong_entry():
    with pytest.raises(TypeError, match="needs a cfx.models.ModelEntry"):
        cfx.models.register_model("bad", object())


def test_the_extension_points_share_the_type():
    import cfx.experiments

    for registry in (cfx.models.MODELS, cfx.generators.REGISTRY, cfx.data.REGISTRY, cfx.experiments.KINDS):
        assert isinstance(registry, Registry), registry


def test_a_registered_model_trains_by_name_in_fit_init_and_ct(moons_split):
    train, _ = moons_split
    entry = cfx.models.ModelEntry(
        lambda *, n_classes, **_: cfx.models.ModuleApply(cfx.models.MLP(widths=(5,), n_classes=n_classes)),
        "one hidden layer of 5 units",
    )
    cfx.models.register_model("tiny", entry)
    try:
        assert cfx.models.list_models()["tiny"] == "one hidden layer of 5 units"
        clf = cfx.models.fit(train, "tiny", epochs=1, seed=0)
        assert clf.params["params"]["hidden_0"]["kernel"].shape == (2, 5)
        same = cfx.models.init(train, "tiny", seed=0)
        assert same.params["params"]["hidden_0"]["kernel"].shape == (2, 5)
        ct = cfx.training.fit_ct(train, "tiny", ct=cfx.training.CTConfig(n_ce=8, max_steps=2), epochs=1)
        assert np.isfinite(np.asarray(ct.classifier.logits(train.X[:4]))).all()
    finally:
        del cfx.models.MODELS["tiny"]


def test_ct_refuses_the_models_it_cannot_train_and_names_those_it_can(moons_split):
    train, _ = moons_split
    assert cfx.models.MODELS.get("jem").energy_based and cfx.models.MODELS.get("ensemble").ensemble
    with pytest.raises(ValueError, match=r"counterfactual training cannot train 'ensemble'.*\['linear', 'mlp'\]"):
        cfx.training.fit_ct(train, "ensemble", ct=cfx.training.CTConfig(n_ce=8), epochs=1)
