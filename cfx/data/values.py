"""The real-valued label column behind a tabular data set's binary label (regression targets).

California housing's label is ``median_house_value >= median``; :func:`label_values` gives the
values themselves for the rows of any split, looked up by the rows' ``ids`` (their positions in
the file, kept through ``subset``, ``split``, ``balance`` and ``standardize``).
"""

from __future__ import annotations

import os

import numpy as np

from cfx.data import tabular


def label_values(data, column: str | None = None, data_dir: str | os.PathLike | None = None) -> np.ndarray:
    """(n,) float64: the raw ``column`` (default: the data set's label column) of ``data``'s rows.

    ``data`` must come from ``cfx.data.load`` of a registered tabular set (its ``name`` and
    ``ids`` locate the rows). Example::

        train, test = cfx.data.train_test(cfx.data.load("california"))
        price = cfx.data.values.label_values(train)          # median_house_value, in dollars
    """
    spec = tabular.SPECS.get(getattr(data, "name", None))
    if spec is None:
        raise ValueError(
            f"data: {getattr(data, 'name', type(data).__name__)!r} is not a registered tabular data set "
            f"({sorted(tabular.SPECS)}); pass the real targets yourself (values=...)"
        )
    df = tabular.read_csv(tabular.find_data_file(spec.path, data_dir, source=spec.source))
    if spec.clean is not None:
        df = spec.clean(df)
    column = spec.label if column is None else column
    if column not in df.columns:
        raise ValueError(f"column: {spec.name} has no column {column!r}; columns: {list(df.columns)}")
    missing = np.setdiff1d(np.asarray(data.ids), df.index.to_numpy())
    if missing.size:
        raise ValueError(f"data: {missing.size} row ids are not rows of {spec.name} (first {missing[0]})")
    values = df.loc[np.asarray(data.ids), column].to_numpy(np.float64)
    if not np.all(np.isfinite(values)):
        raise ValueError(f"column {column!r} has non-finite values in these rows")
    return values
