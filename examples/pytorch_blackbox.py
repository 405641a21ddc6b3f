"""A PyTorch model of Adult as a black box (``from_predict_proba``): GrowingSpheres and cfx.explain.

Needs torch (not a cfx dependency; the CPU wheel is enough). Adult (all rows,
``train_test(seed=0)``), a PyTorch MLP (13 → 64 → 64 → 2, ReLU) trained full-batch with Adam
(300 steps, seed 0) on the encoded training split, the first 100 test rows it rejects, target
1, the schema's constraints. The model is called under ``torch.no_grad`` on the host through
``jax.pure_callback``: one call per search step for the whole batch. Prints the result, warm
seconds per 100 factuals (wall clock), validity by the PyTorch model's own argmax, the mean L2
distance, then ``cfx.explain`` on 10 raw rows.

    python examples/pytorch_blackbox.py
"""

import time

import jax
import numpy as np
import torch

import cfx

train, test = cfx.data.train_test(cfx.data.load("adult"), seed=0)
X, y = torch.from_numpy(np.asarray(train.X)), torch.from_numpy(np.asarray(train.y)).long()
torch.manual_seed(0)
net = torch.nn.Sequential(
    torch.nn.Linear(X.shape[1], 64), torch.nn.ReLU(), torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 2)
)
opt = torch.optim.Adam(net.parameters(), lr=1e-2)
for _ in range(300):
    opt.zero_grad()
    torch.nn.functional.cross_entropy(net(X), y).backward()
    opt.step()
net.eval()


def predict_proba(rows: np.ndarray) -> np.ndarray:
    """(m, d) numpy -> (m, 2) class probabilities; vectorised: cfx passes the whole batch at once."""
    with torch.no_grad():
        return torch.softmax(net(torch.from_numpy(np.asarray(rows, np.float32))), dim=-1).numpy()


clf = cfx.models.from_predict_proba(predict_proba, n_features=X.shape[1], n_classes=2)
Xte = np.asarray(test.X)
rejected = np.flatnonzero(predict_proba(Xte).argmax(1) == 0)
rows = Xte[rejected[:100]]
print("test accuracy", (predict_proba(Xte).argmax(1) == np.asarray(test.y)).mean().round(3))
kw = dict(target=1, key=jax.random.key(0), constraints=train.schema.constraints())
res = cfx.generate(cfx.generators.GrowingSpheres(), clf, rows, **kw)  # compiles
t = time.perf_counter()
res = cfx.generate(cfx.generators.GrowingSpheres(), clf, rows, **kw)
warm = time.perf_counter() - t
cf = np.asarray(res.counterfactuals)[:, 0]
print(
    res,
    "warm s/100",
    round(warm * 100 / len(rows), 2),
    "valid by torch",
    (predict_proba(cf).argmax(1) == 1).mean(),
    "L2",
    np.linalg.norm(cf - rows, axis=1).mean().round(3),
)
out = cfx.explain(clf, test.to_frame().iloc[rejected[:10]], data=train, generator="growing_spheres")
print(out[["valid", "p_target", "n_changed", "changed"]])
print("valid", out["valid"].mean(), "features changed", out["n_changed"].mean())
