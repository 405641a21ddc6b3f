"""Image implausibility (1 − SSIM)/2 on closed forms, and MNIST files that are missing or truncated."""

from __future__ import annotations

import gzip

import jax.numpy as jnp
import numpy as np
import pytest

import cfx
from cfx.data.vision import images_to_dataset, read_idx
from cfx.evaluation import ssim as S
from cfx.search import CounterfactualResult


def test_ssim_closed_forms():
    rng = np.random.default_rng(0)
    a = jnp.asarray(rng.uniform(-1, 1, size=(8, 8)), jnp.float32)
    assert float(S.dissimilarity(a, a)) == pytest.approx(0.0, abs=1e-6)
    # constant images c and -c: sigma = 0, so SSIM = (C1 - 2c^2) / (C1 + 2c^2) in every window
    c, c1 = 0.5, (S.K1 * S.DATA_RANGE) ** 2
    flat = jnp.full((8, 8), c)
    assert float(S.ssim(flat, -flat)) == pytest.approx((c1 - 2 * c * c) / (c1 + 2 * c * c), rel=1e-4)
    # x vs -x: σ_ab = −σ², so per window SSIM = (C1 − 2μ²)(C2 − 2σ²) / ((C1 + 2μ²)(C2 + 2σ²)),
    # μ and σ² the Gaussian-weighted window statistics of a (computed here window by window)
    k, c2 = S.window_size((8, 8)), (S.K2 * S.DATA_RANGE) ** 2
    t = np.exp(-0.5 * ((np.arange(k) - (k - 1) / 2) / S.WINDOW_SIGMA) ** 2)
    g = np.outer(t, t) / np.outer(t, t).sum()
    A, vals = np.asarray(a, np.float64), []
    for i in range(8 - k + 1):
        for j in range(8 - k + 1):
            win = A[i : i + k, j : j + k]
            mu = np.sum(g * win)
            var = np.sum(g * win * win) - mu**2
            vals.append((c1 - 2 * mu**2) * (c2 - 2 * var) / ((c1 + 2 * mu**2) * (c2 + 2 * var)))
    assert float(S.ssim(a, -a)) == pytest.approx(np.mean(vals), rel=1e-4, abs=1e-5)
    # and SSIM stays within its bounds [−1, 1]
    assert -1.0 <= float(S.ssim(a, -a)) <= 1.0
    batch = S.dissimilarity(a, jnp.stack([a, -a, a * 0.5]))
    assert batch.shape == (3,) and np.all((np.asarray(batch) >= 0) & (np.asarray(batch) <= 1))
    assert S.window_size((8, 8)) == 7 and S.window_size((28, 28)) == 11 and S.square_shape(64) == (8, 8)
    assert S.square_shape(10) is None


def test_implausibility_ssim_metric_on_images_and_nan_elsewhere(linear_classifier):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 17, size=(40, 8, 8)).astype(np.float32)
    data = images_to_dataset(imgs, np.arange(40) % 2, max_value=16.0, name="tiny_images")
    clf = cfx.Classifier(lambda p, x: x @ p, jnp.asarray(rng.normal(size=(64, 2)), jnp.float32), n_features=64)
    res = _result(data.X[3:6], data.X[:3][:, None, :], data.y[:3])  # x' = training images of the target class
    out = cfx.evaluate(res, clf, data=data, n_neighbors=1, metrics=["implausibility_ssim"])
    np.testing.assert_allclose(out["per_counterfactual"]["implausibility_ssim"], 0.0, atol=1e-6)
    # tabular-like data (no [-1, 1] pixel box): NaN, not a made-up image
    moons = cfx.data.load("moons", n=50, seed=0)
    res2 = _result(moons.X[:2], moons.X[:2, None], moons.y[:2])
    assert np.isnan(
        cfx.evaluate(res2, linear_classifier, data=moons, metrics=["implausibility_ssim"])["mean"][
            "implausibility_ssim"
        ]
    )


def _result(x, cf, target) -> CounterfactualResult:
    n, K = cf.shape[:2]
    return CounterfactualResult(
        factuals=jnp.asarray(x),
        target=jnp.asarray(target, jnp.int32),
        counterfactuals=jnp.asarray(cf),
        outcome=jnp.zeros((n, K), jnp.int32),
        steps=jnp.zeros((n, K), jnp.int32),
        target_probs=jnp.ones((n, K)),
        terms={},
    )


def _idx_bytes(arr: np.ndarray, code: int = 0x08) -> bytes:
    header = bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, ">i4").tobytes()
    return header + arr.astype(">u1").tobytes()


def test_truncated_and_missing_mnist_files_name_the_file_and_the_size(tmp_path):
    images = np.arange(3 * 4 * 4).reshape(3, 4, 4) % 256
    good = tmp_path / "ok-images-idx3-ubyte"
    good.write_bytes(_idx_bytes(images))
    np.testing.assert_array_equal(read_idx(good), images)
    cut = tmp_path / "cut-images-idx3-ubyte"
    cut.write_bytes(_idx_bytes(images)[:-5])
    with pytest.raises(ValueError, match=r"cut-images-idx3-ubyte is truncated: it holds 43 data bytes; .* says 48"):
        read_idx(cut)
    gz = tmp_path / "cut-images-idx3-ubyte.gz"
    gz.write_bytes(gzip.compress(_idx_bytes(images))[:-10])
    with pytest.raises(ValueError, match=r"cut-images-idx3-ubyte\.gz is a truncated or corrupt gzip file"):
        read_idx(gz)
    header = tmp_path / "short-idx3-ubyte"
    header.write_bytes(_idx_bytes(images)[:9])
    with pytest.raises(ValueError, match=r"short-idx3-ubyte is truncated: 9 bytes, shorter than its 16-byte header"):
        read_idx(header)
    bad = tmp_path / "bad-magic"
    bad.write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(ValueError, match=r"bad-magic is not an IDX file \(magic number 01020304; expected 00 00"):
        read_idx(bad)
    with pytest.raises(FileNotFoundError, match="missing-idx1-ubyte"):
        read_idx(tmp_path / "missing-idx1-ubyte")
    with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte"):
        cfx.data.load("mnist", data_dir=tmp_path)
