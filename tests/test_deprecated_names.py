"""The names the naming pass replaced (CHANGELOG.md, cfx 0.2): each still works for one release and warns,
saying what to write instead. The only place in the repository that uses them."""

import jax
import numpy as np
import pytest

import cfx
from cfx import generators as G
from cfx._deprecated import CfxDeprecationWarning

KEY = jax.random.key(0)


@pytest.fixture
def factuals():
    return np.array([[0.0, 0.0], [0.2, -0.1], [-0.3, 0.1]], np.float32)


def _same(a, b):
    np.testing.assert_array_equal(np.asarray(a.counterfactuals), np.asarray(b.counterfactuals))
    np.testing.assert_array_equal(np.asarray(a.steps), np.asarray(b.steps))


def test_losses_module_and_penalty_are_terms():
    with pytest.warns(CfxDeprecationWarning, match="cfx.terms"):
        assert cfx.losses.l2 is cfx.terms.l2
    with pytest.warns(CfxDeprecationWarning, match="cfx.terms.TermContext"):
        from cfx.losses import TermContext
    assert TermContext is cfx.terms.TermContext
    with pytest.warns(CfxDeprecationWarning, match="cfx.terms.Term"):
        assert G.Penalty is cfx.terms.Term
    with pytest.warns(CfxDeprecationWarning, match="STARTS"):
        assert G.INITS == G.STARTS


def test_the_start_rule_was_init(linear_classifier, factuals):
    with pytest.warns(CfxDeprecationWarning, match=r"write start"):
        old = G.Generic(init="noise", init_scale=0.3)
    assert (old.start, float(old.start_scale)) == ("noise", 0.3)
    with pytest.warns(CfxDeprecationWarning, match=r"read \.start"):
        assert old.init == "noise"
    with pytest.warns(CfxDeprecationWarning):
        assert G.Generic().replace(init="uniform").start == "uniform"
    with pytest.warns(CfxDeprecationWarning, match="latent_start='sample'"):
        assert G.REVISE(start="sample").latent_start == "sample"
    start = np.asarray(factuals) + np.float32(0.25)
    new = cfx.generate(G.Generic(), linear_classifier, factuals, 1, key=KEY, start=start, max_steps=3)
    with pytest.warns(CfxDeprecationWarning, match=r"start=<array>"):
        _same(cfx.generate(G.Generic(), linear_classifier, factuals, 1, key=KEY, init=start, max_steps=3), new)


def test_generate_options_moved_onto_the_generator(linear_classifier, factuals):
    gen = G.Generic()
    new = cfx.generate(
        gen.replace(threshold=0.8, num_counterfactuals=2, start="noise", min_steps=2),
        linear_classifier,
        factuals,
        1,
        key=KEY,
    )
    with pytest.warns(CfxDeprecationWarning, match=r"generator\.replace\(") as record:
        old = cfx.generate(
            gen,
            linear_classifier,
            factuals,
            1,
            key=KEY,
            threshold=0.8,
            num_counterfactuals=2,
            init="noise",
            min_steps=2,
        )
    _same(old, new)
    assert all(w.filename == __file__ for w in record)  # the warning points at the caller's line
    with pytest.raises(TypeError, match="unexpected keyword argument 'tresh'"):
        cfx.generate(gen, linear_classifier, factuals, 1, key=KEY, tresh=0.8)


def test_result_losses_is_terms(linear_classifier, factuals):
    res = cfx.generate(G.Generic(), linear_classifier, factuals, 1, key=KEY, max_steps=2)
    with pytest.warns(CfxDeprecationWarning, match="result.terms"):
        assert res.losses is res.terms
    with pytest.warns(CfxDeprecationWarning, match="terms="):
        again = res.replace(losses={"total": res.terms["total"]})
    assert set(again.terms) == {"total"}


def test_the_generator_decorator_is_generator_class():
    with pytest.warns(CfxDeprecationWarning, match="generator_class"):

        @G.generator
        class Mine(G.Generator):
            cost: float = 0.1

    assert Mine(cost=0.2).cost == 0.2


def test_evaluate_takes_data_by_name(moons_split, moons_mlp):
    train, test = moons_split
    res = cfx.generate(G.Generic(), moons_mlp, test.X[:4], 1, key=KEY, max_steps=5)
    new = cfx.evaluate(res, moons_mlp, data=train, metrics=["validity", "l1"])
    with pytest.warns(CfxDeprecationWarning, match=r"name it: evaluate\(\.\.\., data=\.\.\.\)"):
        old = cfx.evaluate(res, moons_mlp, train, metrics=["validity", "l1"])
    assert old["mean"] == new["mean"]


def test_kind_prepare_is_check_and_store_prepare_is_claim(tmp_path):
    from cfx.experiments import Kind, Store

    def check(cfg):
        return "state"

    with pytest.warns(CfxDeprecationWarning, match="write check="):
        kind = Kind(name="k", schema=object, run=None, report=None, prepare=check)
    assert kind.check is check
    with pytest.warns(CfxDeprecationWarning, match="Kind.check"):
        assert kind.prepare is check
    with pytest.warns(CfxDeprecationWarning, match="Store.claim"):
        assert (
            Store(tmp_path / "out").prepare("a: 1\n", {"a": 1}, lambda p: {"a": 1}, resume=False, force=False) == "new"
        )


def test_training_generator_and_ct_generator_are_ct_generator():
    import cfx.training

    ct = cfx.training.CTConfig()
    for old in ("generator", "ct_generator"):
        with pytest.warns(CfxDeprecationWarning, match=r"read ct\.generator"):
            assert getattr(cfx.training, old)(ct) is ct.generator


def test_ct_config_flat_search_fields_set_its_generator():
    """CTConfig's flat ECCo fields of 0.1 set (and read) CTConfig.generator's, with the 0.1 checks."""
    import dataclasses

    from cfx.generators.eccco import polynomial_schedule
    from cfx.training import CTConfig

    flat = dict(learning_rate=0.1, cost=0.01, energy=2.0, ridge=1e-3, threshold=0.9, stop="max_steps")
    with pytest.warns(CfxDeprecationWarning, match=r"CTConfig\(generator=cfx.generators.ECCo"):
        old = CTConfig(max_steps=50, energy_decay="polynomial", **flat)
    search = {k: v for k, v in flat.items() if k != "stop"}
    new = G.ECCo(convergence="max_steps", **search, **polynomial_schedule(50))
    assert old == CTConfig(max_steps=50, generator=new)
    for name, value in (("threshold", 0.9), ("stop", "max_steps"), ("energy_decay", "polynomial")):
        with pytest.warns(CfxDeprecationWarning, match=r"CTConfig.generator\."):
            assert getattr(old, name) == value
    with pytest.warns(CfxDeprecationWarning):  # replace goes through __init__: a flat change edits the generator
        assert dataclasses.replace(old, cost=0.5).generator == new.replace(cost=0.5)
    for field, bad, error in (
        ("stop", "never", ValueError),
        ("energy_decay", "linear", ValueError),
        ("ridge", -1.0, ValueError),
        ("threshold", 0.0, ValueError),
        ("learning_rate", "fast", TypeError),
    ):
        with pytest.warns(CfxDeprecationWarning), pytest.raises(error, match=f"CTConfig.{field}"):
            CTConfig(**{field: bad})


def test_secondary_meanings_renamed():
    import cfx.data.synthetic
    import cfx.experiments.config
    import cfx.models.trees

    with pytest.warns(CfxDeprecationWarning, match="COLUMN_KINDS"):
        assert cfx.data.KINDS == cfx.data.COLUMN_KINDS
    with pytest.warns(CfxDeprecationWarning, match="ESTIMATOR_CLASSES"):
        assert cfx.models.trees.KINDS == cfx.models.trees.ESTIMATOR_CLASSES
    with pytest.warns(CfxDeprecationWarning, match="MAKERS"):
        assert cfx.data.synthetic.GENERATORS is cfx.data.synthetic.MAKERS
    with pytest.warns(CfxDeprecationWarning, match="ConfigSource"):
        assert cfx.experiments.Context is cfx.experiments.config.ConfigSource
    raw = cfx.experiments.config.RawConfig({"a": 1})
    with pytest.warns(CfxDeprecationWarning, match=r"source\(\)"):
        assert isinstance(raw.context(), cfx.experiments.config.ConfigSource)


def test_dynamics_trace_count_counts_from_jax_events():
    """cfx.dynamics.trace_count (a counter in production code before 0.2) counts the same traces from
    JAX's monitoring events: a new shape of the MMD test traces it once more."""
    import cfx.dynamics

    with pytest.warns(CfxDeprecationWarning, match="compile_counts"):
        count = cfx.dynamics.trace_count
    before = count()
    x = np.random.default_rng(0).normal(size=(7, 3)).astype(np.float32)
    cfx.dynamics.mmd_test(x, x[:6] + 1.0, key=KEY, n_permutations=3)  # a shape no other test uses
    assert count() == before + 1
