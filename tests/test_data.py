"""Tests for cfx.data: synthetic generators, real tabular loaders, images, registry, splits."""

from __future__ import annotations

import gzip
import warnings

import numpy as np
import pytest

import cfx.data as D
from cfx.data import synthetic, tabular
from cfx.search._checks import check_within_bounds

SYNTHETIC = list(synthetic.MAKERS)
REAL = list(tabular.SPECS)


def _have(relpath: str) -> bool:
    return any((d / relpath).is_file() for d in D.data_dirs())


def _need(relpath: str) -> None:
    if not _have(relpath):
        pytest.skip(f"data file {relpath} not in {D.data_dirs()}")


# --------------------------------------------------------------------------- synthetic


@pytest.mark.parametrize("name", SYNTHETIC)
def test_synthetic_shapes_labels_determinism(name):
    k = 4 if name == "multiclass" else 2
    data = D.load(name, n=101, seed=3)
    assert data.X.shape == (101, 2) and data.X.dtype == np.float32
    assert data.y.dtype == np.int32 and set(np.unique(data.y)) == set(range(k))
    counts = np.bincount(data.y)
    assert counts.max() - counts.min() <= 1  # n // k per class, remainder spread
    assert data.name == name and len(data.schema.names) == 2
    assert np.isfinite(data.X).all()
    again = D.load(name, n=101, seed=3)
    np.testing.assert_array_equal(again.X, data.X)
    np.testing.assert_array_equal(again.y, data.y)
    other = D.load(name, n=101, seed=4)
    assert not np.array_equal(other.X, data.X)
    assert len(D.load(name)) == 1000  # default n


def test_blob_geometry():
    sep = D.load("linearly_separable", n=4000, seed=0)
    for c, centre in ((0, -1.0), (1, 1.0)):
        pts = sep.X[sep.y == c]
        np.testing.assert_allclose(pts.mean(0), [centre, centre], atol=0.01)
        np.testing.assert_allclose(pts.std(0), [0.1, 0.1], atol=0.01)
    # linearly separable: the diagonal x1 + x2 = 0 classifies every point
    assert np.all((sep.X.sum(1) > 0) == (sep.y == 1))
    ovl = D.load("overlapping", n=4000, seed=0)
    np.testing.assert_allclose(ovl.X[ovl.y == 1].std(0), [0.5, 0.5], atol=0.03)
    bayes_err = np.mean((ovl.X.sum(1) > 0) != (ovl.y == 1))
    assert 0.05 < bayes_err < 0.11  # closed form Φ(-√2) ≈ 0.079
    # the reference experiments' make_blobs: explicit centres, or centres drawn in a box (seeded)
    placed = D.load("overlapping", n=4000, seed=0, centers=[[0.2, -0.4], [1.9, 0.15]])
    np.testing.assert_allclose(placed.X[placed.y == 1].mean(0), [1.9, 0.15], atol=0.03)
    boxed = D.load("linearly_separable", n=400, seed=5, center_box=(-1, 1))
    means = np.stack([boxed.X[boxed.y == c].mean(0) for c in (0, 1)])
    assert np.all(np.abs(means) < 1.05) and not np.allclose(means, [[-1, -1], [1, 1]], atol=0.1)
    np.testing.assert_array_equal(D.load("linearly_separable", n=400, seed=5, center_box=(-1, 1)).X, boxed.X)
    with pytest.raises(ValueError, match="centers or center_box, not both"):
        D.load("overlapping", centers=[[0, 0], [1, 1]], center_box=(-1, 1))


def test_circles_is_learnable_by_radius():
    data = D.load("circles", n=2000, seed=0)
    r = np.linalg.norm(data.X, axis=1)
    assert np.mean((r < 0.55) == (data.y == 1)) > 0.97  # inner blob vs ring of radius 1
    assert abs(np.mean(data.X[:, 0] > 0) - 0.5) < 0.05  # ... and not linearly separable


def test_synthetic_options_and_cats_dogs():
    wide = D.load("circles", n=500, factor=0.5)
    inner = np.linalg.norm(wide.X[wide.y == 1], axis=1)
    assert 0.4 < np.median(inner) < 0.6
    cd = D.load("cats_dogs", n=500)
    assert cd.schema.names == ("height", "tail_length")
    assert (cd.X >= 0).all() and cd.schema.lower == (0.0, 0.0)
    assert cd.X[cd.y == 1, 0].mean() > cd.X[cd.y == 0, 0].mean() + 10  # dogs are taller
    with pytest.raises(ValueError, match="factor"):
        D.load("circles", factor=1.5)
    with pytest.raises(ValueError, match="n must be"):
        D.load("moons", n=0)
    with pytest.raises(TypeError, match="n must be"):
        D.load("moons", n=2.5)


# --------------------------------------------------------------------------- registry


def test_list_and_unknown_name():
    listed = D.list_datasets()
    assert set(SYNTHETIC + REAL + ["digits", "mnist"]) == set(listed)
    assert all(isinstance(v, str) and v for v in listed.values())
    with pytest.raises(ValueError) as err:
        D.load("moonz")
    msg = str(err.value)
    assert "'moons'" in msg and "Did you mean" in msg
    for name in ("german", "digits", "circles", "mnist"):
        assert name in msg
    assert D.load("Cats-Dogs", n=10).name == "cats_dogs"  # normalised spelling
    with pytest.raises(TypeError, match="options"):
        D.load("digits", noise=0.1)


# --------------------------------------------------------------------------- vision


def test_digits_range_and_subsample():
    data = D.load("digits")
    assert data.X.shape == (1797, 64) and data.X.dtype == np.float32
    assert data.X.min() == -1.0 and data.X.max() == 1.0
    assert set(np.unique(data.y)) == set(range(10))
    assert data.schema.lower == (-1.0,) * 64 and data.schema.upper == (1.0,) * 64
    a, b = D.load("digits", n=200, seed=1), D.load("digits", n=200, seed=1)
    assert a.X.shape == (200, 64)
    np.testing.assert_array_equal(a.X, b.X)
    train, test = D.train_test(a)  # images are never standardised
    assert train.standardizer is None and train.X.min() >= -1.0 and train.X.max() <= 1.0


def _write_idx(path, arr: np.ndarray, code: int, compress: bool) -> None:
    header = bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, ">i4").tobytes()
    raw = header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_roundtrip(tmp_path, compress):
    imgs = np.random.default_rng(0).integers(0, 256, (5, 3, 4)).astype(np.uint8)
    labels = np.arange(5, dtype=np.uint8)
    _write_idx(tmp_path / "img", imgs, 0x08, compress)
    _write_idx(tmp_path / "lab", labels, 0x08, compress)
    np.testing.assert_array_equal(D.read_idx(tmp_path / "img"), imgs)
    data = D.mnist_from_idx(tmp_path / "img", tmp_path / "lab", name="tiny")
    assert data.X.shape == (5, 12) and data.schema.names[5] == "px_1_1"
    np.testing.assert_allclose(data.X, imgs.reshape(5, 12) / 127.5 - 1.0, atol=1e-6)
    floats = np.linspace(-1, 1, 6).reshape(2, 3)
    _write_idx(tmp_path / "f", floats, 0x0E, compress)
    np.testing.assert_array_equal(D.read_idx(tmp_path / "f"), floats)
    (tmp_path / "bad").write_bytes(b"not an idx file")
    with pytest.raises(ValueError, match="not an IDX file"):
        D.read_idx(tmp_path / "bad")


def test_mnist_reader():
    _need("mnist/t10k-images-idx3-ubyte.gz")
    data = D.load("mnist")
    assert data.X.shape == (10_000, 784) and data.X.dtype == np.float32
    assert data.X.min() == -1.0 and data.X.max() == 1.0
    assert set(np.unique(data.y)) == set(range(10))
    assert D.load("mnist", n=100, seed=0).X.shape == (100, 784)


# --------------------------------------------------------------------------- real tabular


@pytest.mark.parametrize("name", REAL)
def test_real_loader(name):
    _need(tabular.SPECS[name].path)
    data = D.load(name)
    X, y, s = data.X, data.y, data.schema
    assert X.dtype == np.float32 and np.isfinite(X).all()
    assert set(np.unique(y)) == {0, 1}
    assert len(s.names) == len(s.mutability) == len(s.lower) == len(s.upper) == X.shape[1]
    assert len(set(s.names)) == len(s.names)
    flat = [j for g in s.categorical_groups for j in g]
    assert len(flat) == len(set(flat))
    for g in s.categorical_groups:
        cols = X[:, list(g)]
        assert set(np.unique(cols)) <= {0.0, 1.0}
        if len(g) > 1:  # a one-hot group: exactly one hot column per row
            np.testing.assert_array_equal(cols.sum(1), 1.0)
    lo, hi = np.asarray(s.lower), np.asarray(s.upper)
    assert (X >= lo).all() and (X <= hi).all()
    # standardised on a training split, every row still satisfies its own (mapped) bounds
    train, test = D.train_test(data, seed=0)
    resolved = train.schema.constraints().resolve(X.shape[1])
    check_within_bounds(train.X, (np.asarray(resolved.lower), np.asarray(resolved.upper)))
    check_within_bounds(test.X, (np.asarray(resolved.lower), np.asarray(resolved.upper)))
    # seeded subsampling and balancing
    sub = D.load(name, n=300, seed=5)
    assert len(sub) == 300
    np.testing.assert_array_equal(sub.X, D.load(name, n=300, seed=5).X)
    bal = D.load(name, n=200, balance=True, seed=1)
    assert np.bincount(bal.y).tolist() == [100, 100]


def test_real_schema_choices():
    _need("recourse/german_credit.csv")
    german = D.load("german")
    assert german.y.mean() == pytest.approx(0.7)  # GoodCustomer: 700 good, -1 -> 0 for 300 bad
    mut = dict(zip(german.schema.names, german.schema.mutability))
    assert mut["Age"] == "increase" and mut["Gender_Male"] == "none" and mut["ForeignWorker"] == "none"
    purpose = [j for j, n in enumerate(german.schema.names) if n.startswith("PurposeOfLoan_")]
    assert tuple(purpose) in german.schema.categorical_groups and len(purpose) == 10
    _need("recourse/taiwan_credit_default.csv")
    credit = D.load("credit")
    assert "ID" not in credit.schema.names
    assert int((credit.y == 1).sum()) == 23364  # 1 = no default (flipped from the file)
    _need("california/housing.csv")
    cal = D.load("california")
    assert len(cal) == 20433 and abs(cal.y.mean() - 0.5) < 0.01  # NA rows dropped; median split


def test_real_loader_bad_requests():
    _need("carla/compas.csv")
    with pytest.raises(ValueError, match="exceeds"):
        D.load("compas", n=10**6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(UserWarning, match="smallest class"):
            D.load("compas", n=5000, balance=True)


def test_missing_file_error(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        D.load("gmsc", data_dir=tmp_path)
    msg = str(err.value)
    assert "carla/give_me_some_credit_test.csv" in msg and str(tmp_path) in msg
    assert "CFX_DATA_DIR" in msg and "--data-dir" in msg and "github.com/carla-recourse" in msg
    with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte"):
        D.load("mnist", data_dir=tmp_path)


def test_data_dir_from_environment(tmp_path, monkeypatch):
    (tmp_path / "carla").mkdir()
    (tmp_path / "carla" / "compas.csv").write_text(
        "age,two_year_recid,c_charge_degree,race,sex,priors_count,length_of_stay,score\n"
        "30,1,F,African-American,Male,2,10,1\n"
        "40,0,M,Other,Female,0,1,0\n"
        "50,0,F,Other,Male,5,3,1\n"
    )
    monkeypatch.setenv(D.ENV_VAR, str(tmp_path))
    assert D.data_dirs()[0] == tmp_path
    data = D.load("compas")
    assert len(data) == 3 and data.y.tolist() == [1, 0, 1]
    assert data.X[:, data.schema.names.index("race_African-American")].tolist() == [1.0, 0.0, 0.0]
    assert data.schema.lower[0] == 30.0 and data.schema.upper[0] == 50.0  # bounds = data range
    assert D.data_dirs(tmp_path / "x") == [tmp_path / "x"]  # the argument wins


# --------------------------------------------------------------------------- train/test


def _plain_dataset(seed=0):
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.normal(5.0, 2.0, 400), rng.normal(-3.0, 0.5, 400), rng.integers(0, 2, 400)])
    schema = D.FeatureSchema(("a", "b", "flag"), ("both",) * 3, (-np.inf, -10.0, 0.0), (np.inf, 10.0, 1.0), ((2,),))
    return D.Dataset(X, (X[:, 0] > 5).astype(int), schema, name="custom")


def test_train_test_uses_train_statistics_only():
    data = _plain_dataset()
    raw_train, raw_test = data.split(test_size=0.25, seed=7)
    train, test = D.train_test(data, test_size=0.25, seed=7)
    assert test.standardizer is train.standardizer
    np.testing.assert_allclose(train.X[:, :2].mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(train.X[:, :2].std(0), 1.0, atol=1e-4)
    assert np.all(np.abs(test.X[:, :2].mean(0)) > 1e-4)  # not refitted on the test split
    np.testing.assert_allclose(train.standardizer.mean[:2], raw_train.X[:, :2].mean(0), rtol=1e-5)
    np.testing.assert_array_equal(test.X[:, 2], raw_test.X[:, 2])  # binary column untouched
    np.testing.assert_allclose(train.standardizer.inverse_transform(test.X), raw_test.X, atol=1e-5)
    b_lo = (-10.0 - train.standardizer.mean[1]) / train.standardizer.scale[1]
    assert train.schema.lower[1] == pytest.approx(b_lo, rel=1e-5) and train.schema.upper[2] == 1.0
    plain, _ = D.train_test(data, standardize=False)
    assert plain.standardizer is None


def test_train_test_policy_per_dataset():
    moons = D.load("moons", n=200)
    train, test = D.train_test(moons)
    assert train.standardizer is None and len(train) == 160 and len(test) == 40
    cd_train, _ = D.train_test(D.load("cats_dogs", n=200))
    assert cd_train.standardizer is not None and abs(cd_train.X.mean()) < 1e-4
    with pytest.raises(TypeError, match="Dataset"):
        D.train_test(moons.X)
