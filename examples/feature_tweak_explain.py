"""cfx.explain with FeatureTweak on sklearn forests of German, COMPAS and Adult (a quick check).

Each data set from cfx's loader (``train_test(seed=0)``), a ``RandomForestClassifier(30,
max_depth=6, random_state=0)`` on the encoded training split, the first 30 test rows it rejects
(German: 15 exist), ``cfx.explain(..., generator=FeatureTweak())`` at its defaults (the schema's
constraints; target: the other class). Prints validity, mean raw features changed and outcomes.

    python examples/feature_tweak_explain.py
"""

import numpy as np
from sklearn.ensemble import RandomForestClassifier

import cfx

for name in ["german", "compas", "adult"]:
    train, test = cfx.data.train_test(cfx.data.load(name), seed=0)
    groups = train.schema.constraints().resolve(train.X.shape[1]).categorical_groups
    forest = RandomForestClassifier(30, max_depth=6, random_state=0).fit(np.asarray(train.X), np.asarray(train.y))
    clf = cfx.models.from_sklearn(forest)
    rows = test.to_frame()[forest.predict(np.asarray(test.X)) == 0].head(30)
    out = cfx.explain(clf, rows, data=train, generator=cfx.generators.FeatureTweak())
    print(
        f"{name}: d={train.X.shape[1]}, one-hot groups of size {sorted({len(g) for g in groups})}, {len(rows)} rows: "
        f"valid {out['valid'].mean():.2f}, features changed {out['n_changed'].mean():.2f}, "
        f"{out['outcome'].value_counts().to_dict()}"
    )
