"""cfx.save / cfx.load: bit-identical predictions and counterfactuals, data as data, clear refusals;
CounterfactualResult's repr and to_frame."""

from __future__ import annotations

import jax
import numpy as np
import pandas as pd
import pytest

import cfx


@pytest.fixture(scope="module")
def tabular():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "age": rng.integers(20, 60, 150).astype(float),
            "income": rng.normal(40, 8, 150),
            "job": rng.choice(["a", "b", "c"], 150),
            "y": rng.integers(0, 2, 150),
        }
    )
    train, test = cfx.data.train_test(
        cfx.data.from_frame(frame, "y", categorical=["job"], mutability={"age": "increase"}), seed=0
    )
    return train, test


@pytest.mark.parametrize("model", ["mlp", "ensemble", "jem"])
def test_save_load_gives_bit_identical_predictions_and_counterfactuals(model, tabular, tmp_path):
    train, test = tabular
    clf = cfx.models.fit(train, model=model, epochs=2, widths=(8,), n_members=2)
    gen = cfx.generators.make("wachter", data=train)
    cfx.save(tmp_path / "b", classifier=clf, dataset=train, generator=gen)
    back = cfx.load(tmp_path / "b")
    np.testing.assert_array_equal(np.asarray(clf.logits(test.X)), np.asarray(back["classifier"].logits(test.X)))
    key = jax.random.key(0)
    a = cfx.generate(gen, clf, test.X[:4], 1, key=key, max_steps=20)
    b = cfx.generate(back["generator"], back["classifier"], test.X[:4], 1, key=key, max_steps=20)
    np.testing.assert_array_equal(np.asarray(a.counterfactuals), np.asarray(b.counterfactuals))
    data = back["dataset"]
    np.testing.assert_array_equal(data.X, train.X)
    np.testing.assert_array_equal(data.y, train.y)
    assert data.schema == train.schema and data.name == train.name
    pd.testing.assert_frame_equal(data.encoder.decode(test.X), train.encoder.decode(test.X))


def test_save_refuses_what_it_cannot_write_and_writes_nothing(tabular, tmp_path):
    train, _ = tabular
    plain = cfx.Classifier(lambda p, x: x @ p, np.ones((train.X.shape[1], 2), np.float32), n_features=train.X.shape[1])
    with pytest.raises(TypeError, match="apply_fn is a function; cfx.save takes models built by cfx.models.fit"):
        cfx.save(tmp_path / "x", classifier=plain, dataset=train)
    assert not (tmp_path / "x").exists()
    with pytest.raises(ValueError, match="at least one of"):
        cfx.save(tmp_path / "y")
    with pytest.raises(FileNotFoundError, match="holds no manifest.json"):
        cfx.load(tmp_path)


def test_result_repr_and_frame(tabular):
    train, test = tabular
    clf = cfx.models.fit(train, epochs=2, widths=(8,))
    res = cfx.generate(
        cfx.generators.Generic().replace(num_counterfactuals=2), clf, test.X[:3], 1, key=jax.random.key(0), max_steps=10
    )
    assert repr(res).startswith("CounterfactualResult(n=3, K=2, converged=")
    frame = res.to_frame(train.schema.names)
    assert len(frame) == 6 and list(frame.columns[:6]) == ["factual", "k", "target", "outcome", "steps", "target_prob"]
    assert set(frame["outcome"]) <= set(cfx.OUTCOMES)
    np.testing.assert_array_equal(
        frame[list(train.schema.names)].to_numpy(), np.asarray(res.counterfactuals).reshape(6, -1)
    )
