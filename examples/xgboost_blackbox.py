"""An XGBoost model of Adult as a black box (``from_predict_proba``): GrowingSpheres and cfx.explain.

Needs xgboost (not a cfx dependency). Adult (all rows, ``train_test(seed=0)``),
``XGBClassifier(n_estimators=100, max_depth=4, random_state=0)`` on the encoded training
split, the first 100 test rows it rejects, target 1, the schema's constraints. Prints the
result, warm seconds per 100 factuals (wall clock), validity by XGBoost's own ``predict``, the
mean L2 distance, then ``cfx.explain`` on 10 of the rows.

    python examples/xgboost_blackbox.py
"""

import time

import jax
import numpy as np

import cfx
from xgboost import XGBClassifier

train, test = cfx.data.train_test(cfx.data.load("adult"), seed=0)
X, y = np.asarray(train.X), np.asarray(train.y)
model = XGBClassifier(n_estimators=100, max_depth=4, random_state=0, n_jobs=1).fit(X, y)
clf = cfx.models.from_predict_proba(model.predict_proba, n_features=X.shape[1], n_classes=2)
Xte = np.asarray(test.X)
rows = Xte[model.predict(Xte) == 0][:100]
kw = dict(target=1, key=jax.random.key(0), constraints=train.schema.constraints())
res = cfx.generate(cfx.generators.GrowingSpheres(), clf, rows, **kw)
t = time.perf_counter()
res = cfx.generate(cfx.generators.GrowingSpheres(), clf, rows, **kw)
warm = time.perf_counter() - t
cf = np.asarray(res.counterfactuals)[:, 0]
print(
    res,
    "warm s/100",
    round(warm, 2),
    "valid by xgboost",
    (model.predict(cf) == 1).mean(),
    "L2",
    np.linalg.norm(cf - rows, axis=1).mean(),
)
out = cfx.explain(
    clf, test.to_frame().iloc[np.flatnonzero(model.predict(Xte) == 0)[:10]], data=train, generator="growing_spheres"
)
print(out["valid"].mean(), out["n_changed"].mean())
