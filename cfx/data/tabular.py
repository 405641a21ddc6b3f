"""Real tabular data sets (SPEC §7), read from CSV files in a data directory.

Files are never shipped with cfx. The data directory is, in order of precedence:

1. the ``data_dir`` argument (CLI: ``--data-dir``) -- if given, only it is searched;
2. the environment variable ``CFX_DATA_DIR``;
3. ``<repo root>/../shared/data``, where the repo root is the parent of the ``cfx``
   package directory (the layout used in CI and on the team's machines), if it exists.

Conventions shared by every loader here:

* **Label**: binary, and **1 is always the favourable outcome** (credit granted / no
  default / high income / low risk score / high house value), so recourse targets class 1.
  Where the file codes it the other way round the loader flips it (see each spec).
* **Encoding**: categorical columns with more than two levels become one-hot groups
  ``<column>_<level>``; two-level columns become one 0/1 column (a one-column group);
  numeric columns that only hold 0/1 are binary one-column groups as well. All groups are
  recorded in ``schema.categorical_groups`` (and are left unscaled by ``Dataset.standardize``).
* **Bounds**: the min/max of each numeric column over the whole cleaned file, [0, 1] for
  binary and one-hot columns. ``Dataset.standardize`` maps them to the standardised scale.
* **Kinds**: columns that hold integers (ages, counts, amounts in whole units) are declared
  ``integer`` per spec: counterfactuals are rounded to them (``Constraints.integer_features``).
  Give Me Some Credit, HELOC and California are left continuous (gmsc is the benchmark's
  tabular set: declaring its integer columns would change the benchmark's numbers).
* **Encoder**: every loaded Dataset carries its fitted :class:`~cfx.data.encoder.TabularEncoder`
  (``data.encoder``; ``data.to_frame()`` gives raw values, ``data.encoder.encode(frame)`` new rows),
  and ``data.ids`` the row's position in the file.
* **Mutability**: ``"both"`` unless the spec says otherwise. Protected attributes
  (sex/gender, race, foreign worker, native country) and marital status are immutable
  (recommending them is not recourse); age and "ever"-counts only increase; geography and
  census artefacts (longitude/latitude, fnlwgt) are immutable.

The features are **not** standardised here: use :func:`cfx.data.train_test` (fits the
standardiser on the training split only) or ``Dataset.standardize``.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import os
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from cfx.data.dataset import Dataset, FeatureSchema
from cfx.data.encoder import TabularEncoder

ENV_VAR = "CFX_DATA_DIR"
CARLA = "the CARLA benchmark data repository https://github.com/carla-recourse/cf-data (MIT licence)"
RECOURSE = (
    "the actionable-recourse examples https://github.com/ustunb/actionable-recourse "
    "(examples/paper/data; BSD-3 licence)"
)


# --------------------------------------------------------------------------- data directory


def default_data_dir() -> Path:
    """``<repo root>/../shared/data`` with repo root = parent of the ``cfx`` package directory."""
    repo_root = Path(__file__).resolve().parents[2]
    return repo_root.parent / "shared" / "data"


def data_dirs(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The directories searched for data files, in order (see module docstring)."""
    if data_dir is not None:
        return [Path(data_dir).expanduser()]
    dirs = []
    env = os.environ.get(ENV_VAR)
    if env:
        dirs.append(Path(env).expanduser())
    dirs.append(default_data_dir())
    return dirs


def find_data_file(
    relpath: str,
    data_dir: str | os.PathLike | None = None,
    *,
    source: str = "its public source",
    alternatives: Sequence[str] = (),
) -> Path:
    """Locate ``relpath`` (or one of ``alternatives``) in the data directories.

    Raises FileNotFoundError naming the file, every directory searched and where to get it.
    """
    rels = (relpath, *alternatives)
    dirs = data_dirs(data_dir)
    for d in dirs:
        for rel in rels:
            path = d / rel
            if path.is_file():
                return path
    looked = "\n".join(f"  - {d}{'' if d.is_dir() else ' (directory does not exist)'}" for d in dirs)
    names = " or ".join(repr(r) for r in rels)
    raise FileNotFoundError(
        f"cfx data file {names} not found. Looked in:\n{looked}\n"
        f"Obtain it from {source} and save it as <data dir>/{relpath}; then point cfx at that "
        f"directory with data_dir=... (CLI: --data-dir DIR) or the environment variable {ENV_VAR}."
    )


def read_csv(path: Path) -> pd.DataFrame:
    """``pd.read_csv`` that also accepts a file wrapped in a Python bytes literal.

    The shared ``california/housing.csv`` is stored as ``b'<csv text>\\n'`` (its first header
    reads ``b'longitude`` and its last line is a lone quote); strip that wrapper.
    """
    with open(path, "rb") as fh:
        head = fh.read(2)
    if head != b"b'":
        return pd.read_csv(path)
    text = Path(path).read_text()[2:].rstrip()
    if text.endswith("'"):
        text = text[:-1]
    return pd.read_csv(io.StringIO(text))


# --------------------------------------------------------------------------- specifications


def _column(label: str) -> Callable[[pd.DataFrame], pd.Series]:
    return lambda df: df[label]


@dataclasses.dataclass(frozen=True)
class TabularSpec:
    """How to turn one CSV file into a :class:`Dataset`.

    Attributes:
      name, path: registry name and path relative to the data directory.
      label: label column (removed from the features).
      description: one line for :func:`cfx.data.list_datasets`.
      source: where to obtain the file (used in the missing-file error).
      target: maps the cleaned frame to 0/1 labels with 1 favourable (default: the label column).
      clean: optional frame -> frame step run first (drop rows, rename codes).
      drop: further columns that are not features.
      binary: two-level categorical column -> the level coded as 1.
      onehot: categorical columns expanded into one-hot groups.
      mutability: column -> mutability (default "both"); applies to all columns of a group.
      integer: numeric columns holding integers (searched relaxed, returned rounded).
      ordinal: column -> its levels in order (encoded as the level's rank 0, 1, ...).
      bounds: column -> (lower, upper) in raw units (default: the column's range in the file).
      n_classes: the labels are 0 .. n_classes − 1 (2: binary).
    """

    name: str
    path: str
    label: str
    description: str
    source: str
    target: Callable[[pd.DataFrame], pd.Series] | None = None
    clean: Callable[[pd.DataFrame], pd.DataFrame] | None = None
    drop: tuple[str, ...] = ()
    binary: Mapping[str, object] = dataclasses.field(default_factory=dict)
    onehot: tuple[str, ...] = ()
    mutability: Mapping[str, str] = dataclasses.field(default_factory=dict)
    integer: tuple[str, ...] = ()
    ordinal: Mapping[str, tuple] = dataclasses.field(default_factory=dict)
    bounds: Mapping[str, tuple[float, float]] = dataclasses.field(default_factory=dict)
    n_classes: int = 2


def encode(df: pd.DataFrame, spec: TabularSpec, *, infer: bool = False) -> Dataset:
    """Clean, label and encode ``df`` according to ``spec`` (see module docstring).

    The :class:`TabularEncoder` is fitted here, on the whole cleaned file, and stored on the
    Dataset (``data.encoder``): new frames are encoded with it, never with a refit. Row ids are
    the frame's index after cleaning (the row's position in the file). ``infer``: undeclared
    non-numeric columns become binary (two levels) or one-hot groups instead of an error, and
    columns of an integer dtype integer features.
    """
    if spec.clean is not None:
        df = spec.clean(df)
    y = (spec.target or _column(spec.label))(df)
    if y.isna().any() or not set(np.unique(y.to_numpy())) <= set(range(spec.n_classes)):
        hint = "" if spec.n_classes > 2 else " (a two-level label: pass positive=; more classes: classes=[...])"
        raise ValueError(
            f"{spec.name}: label {spec.label!r} does not map to 0..{spec.n_classes - 1}{hint} (values "
            f"{sorted(set(y), key=str)[:5]})"
        )
    features = df.drop(columns=[spec.label, *spec.drop])
    declared = set(spec.mutability) | set(spec.binary) | set(spec.onehot) | set(spec.integer) | set(spec.ordinal)
    unknown = (declared | set(spec.bounds)) - set(features.columns)
    if unknown:
        raise ValueError(f"{spec.name}: spec names columns not in the file: {sorted(unknown)}")
    for col in features.columns:
        s = features[col]
        if s.isna().any():
            raise ValueError(f"{spec.name}: column {col!r} has {int(s.isna().sum())} missing values")
        if not (
            infer or pd.api.types.is_numeric_dtype(s) or col in spec.onehot or col in spec.binary or col in spec.ordinal
        ):
            raise ValueError(f"{spec.name}: column {col!r} is not numeric and the spec gives no encoding for it")
    encoder = TabularEncoder.fit(
        features,
        categorical=spec.onehot,
        binary=spec.binary,
        ordinal=spec.ordinal,
        integer=spec.integer,
        passthrough=(spec.label, *spec.drop),
        infer_integer=infer,
    )
    X = encoder.encode(features)
    mut, lower, upper = [], [], []
    for c, (a, b) in zip(encoder.columns, encoder.spans()):
        if c.kind in ("continuous", "integer"):
            lo, hi = spec.bounds.get(c.name, (X[:, a].min(), X[:, a].max()))
        elif c.kind == "ordinal":
            lo, hi = 0, len(c.levels) - 1
        else:
            lo, hi = 0, 1
        for _ in range(a, b):
            # Bounds as float32 values, the precision X is stored in, so min/max rows sit exactly on them.
            lower.append(float(np.float32(lo)))
            upper.append(float(np.float32(hi)))
            mut.append(spec.mutability.get(c.name, "both"))
    schema = FeatureSchema(
        encoder.names, tuple(mut), tuple(lower), tuple(upper), encoder.groups(), kinds=encoder.kinds()
    )
    ids = features.index.to_numpy()
    return Dataset(X, y.to_numpy().astype(np.int32), schema, name=spec.name, encoder=encoder, ids=ids)


def from_frame(
    frame: pd.DataFrame,
    label: str,
    *,
    name: str = "frame",
    categorical: Sequence[str] = (),
    binary: Mapping[str, object] | None = None,
    ordinal: Mapping[str, Sequence] | None = None,
    integer: Sequence[str] = (),
    mutability: Mapping[str, str] | None = None,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    drop: Sequence[str] = (),
    positive: object = None,
    classes: Sequence | None = None,
) -> Dataset:
    """A :class:`Dataset` (raw units, fitted encoder) from a DataFrame you hold.

    ``label`` is a 0/1 column (1 favourable), or a two-level column (``"yes"``/``"no"``) with
    ``positive`` its favourable level (y = 1 where label == positive), or a multi-class column
    with ``classes`` its levels in class order (y = c where label == classes[c]); the other arguments are as in :class:`TabularSpec`
    (``categorical`` = one-hot columns; undeclared string columns are categorical too, undeclared
    columns of an integer dtype (int64 ages, counts) integer features);
    ``bounds`` (column -> (lower, upper), raw units) default to the column's range. Row ids are
    the frame's index. Then ``cfx.data.train_test(data)`` standardises as for the real sets.

    Example::

        data = cfx.data.from_frame(df, "approved", integer=["age"], ordinal={"grade": ["C", "B", "A"]})
    """
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"frame must be a pandas DataFrame; got {type(frame).__name__}")
    if label not in frame.columns:
        raise ValueError(f"label: column {label!r} is not in the frame (columns: {list(frame.columns)})")
    target, n_classes = None, 2
    if positive is not None and classes is not None:
        raise ValueError("positive and classes: pass one (positive: a two-level label; classes: its levels in order)")
    if classes is not None:
        classes = list(classes)
        unknown = sorted(set(pd.unique(frame[label].dropna())) - set(classes), key=str)
        if len(classes) < 2 or len(set(classes)) != len(classes) or unknown:
            raise ValueError(
                f"classes: the label {label!r}'s levels in class order, each once, at least two; got "
                f"{classes!r}" + (f" (levels not in it: {unknown[:5]})" if unknown else "")
            )
        index = {v: i for i, v in enumerate(classes)}
        target = lambda df: df[label].map(index)  # noqa: E731
        n_classes = len(classes)
    if positive is not None:
        levels = list(pd.unique(frame[label].dropna()))
        if positive not in levels or len(levels) > 2:
            raise ValueError(
                f"positive: the label {label!r} must have two levels, one of them {positive!r}; "
                f"got {sorted(levels, key=str)[:5]}"
            )
        target = lambda df: (df[label] == positive).astype(int).where(df[label].notna())  # noqa: E731
    spec = TabularSpec(
        name=name,
        path="",
        label=label,
        description="",
        source="",
        drop=tuple(drop),
        target=target,
        binary=dict(binary or {}),
        onehot=tuple(categorical),
        mutability=dict(mutability or {}),
        integer=tuple(integer),
        ordinal={k: tuple(v) for k, v in (ordinal or {}).items()},
        bounds={k: tuple(v) for k, v in (bounds or {}).items()},
        n_classes=n_classes,
    )
    return encode(frame, spec, infer=True)


# --------------------------------------------------------------------------- the data sets


def _california_clean(df: pd.DataFrame) -> pd.DataFrame:
    # 207 of 20,640 districts (1 %) lack total_bedrooms; we drop them rather than impute,
    # so every row is an observed district (imputation would put fake points on a line).
    # The index is kept: it is the row id (the district's position in the file).
    return df.dropna(subset=["total_bedrooms"])


def _california_target(df: pd.DataFrame) -> pd.Series:
    """1 if the district's median house value is at least the median over all kept districts."""
    v = df["median_house_value"]
    return (v >= v.median()).astype(int)


def _california_sklearn_clean(df: pd.DataFrame) -> pd.DataFrame:
    """scikit-learn's ``fetch_california_housing`` features from the same census districts:
    MedInc, HouseAge, AveRooms, AveBedrms, Population, AveOccup, Latitude, Longitude (per-household
    averages instead of district totals; no ocean_proximity)."""
    df = _california_clean(df)
    hh = df["households"]
    return pd.DataFrame(
        {
            "MedInc": df["median_income"],
            "HouseAge": df["housing_median_age"],
            "AveRooms": df["total_rooms"] / hh,
            "AveBedrms": df["total_bedrooms"] / hh,
            "Population": df["population"],
            "AveOccup": df["population"] / hh,
            "Latitude": df["latitude"],
            "Longitude": df["longitude"],
            "median_house_value": df["median_house_value"],
        },
        index=df.index,
    )


_CREDIT_CODES = {
    "SEX": {1: "male", 2: "female"},
    "EDUCATION": {
        1: "graduate_school",
        2: "university",
        3: "high_school",
        4: "others",
        5: "unknown5",
        6: "unknown6",
        0: "unknown0",
    },
    "MARRIAGE": {1: "married", 2: "single", 3: "others", 0: "unknown0"},
}


def _credit_clean(df: pd.DataFrame) -> pd.DataFrame:
    """Replace the UCI codes of SEX/EDUCATION/MARRIAGE by readable level names."""
    df = df.copy()
    for col, codes in _CREDIT_CODES.items():
        df[col] = df[col].map(codes)
    return df


SPECS: dict[str, TabularSpec] = {
    spec.name: spec
    for spec in [
        TabularSpec(
            name="gmsc",
            path="carla/give_me_some_credit_test.csv",
            label="SeriousDlqin2yrs",
            description="Give Me Some Credit: 28,882 borrowers, 10 numeric features; 1 = no serious delinquency (real, tabular)",
            source=CARLA,
            mutability={"age": "increase"},
        ),
        TabularSpec(
            name="adult",
            path="carla/adult.csv",
            label="income",
            integer=("age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week"),
            description="UCI Adult (CARLA): 48,832 people, 13 features, 7 binary categoricals; 1 = income >50K (real, tabular)",
            source=CARLA,
            binary={
                "workclass": "Private",
                "marital-status": "Married",
                "occupation": "Managerial-Specialist",
                "relationship": "Husband",
                "race": "White",
                "sex": "Male",
                "native-country": "US",
            },
            mutability={
                "age": "increase",
                "fnlwgt": "none",  # census sampling weight, not a property of the person
                "education-num": "increase",
                "marital-status": "none",
                "relationship": "none",
                "race": "none",
                "sex": "none",
                "native-country": "none",
            },
        ),
        TabularSpec(
            name="german",
            path="recourse/german_credit.csv",
            label="GoodCustomer",
            description="UCI German credit: 1,000 applicants, 38 columns after one-hot; 1 = good customer (real, tabular)",
            source=RECOURSE,
            target=lambda df: df["GoodCustomer"].map({1: 1, -1: 0}),
            binary={"Gender": "Male"},
            onehot=("PurposeOfLoan",),
            integer=(
                "Age",
                "LoanDuration",
                "LoanAmount",
                "LoanRateAsPercentOfIncome",
                "YearsAtCurrentHome",
                "NumberOfOtherLoansAtBank",
                "NumberOfLiableIndividuals",
            ),
            mutability={"Gender": "none", "ForeignWorker": "none", "Single": "none", "Age": "increase"},
        ),
        TabularSpec(
            name="credit",
            path="recourse/taiwan_credit_default.csv",
            label="default payment next month",
            description="UCI Taiwan credit card default: 30,000 clients, 32 columns after one-hot; 1 = no default (real, tabular)",
            source=RECOURSE + " or UCI 'default of credit card clients'",
            # The file codes 1 = default; flipped so 1 is favourable like every other loader.
            # (AlgorithmicRecourseDynamics.jl uses the raw coding; its target 1 = our class 0.)
            target=lambda df: 1 - df["default payment next month"],
            clean=_credit_clean,
            drop=("ID",),
            binary={"SEX": "female"},
            onehot=("EDUCATION", "MARRIAGE"),
            integer=(
                "LIMIT_BAL",
                "AGE",
                *(f"PAY_{i}" for i in (0, 2, 3, 4, 5, 6)),
                *(f"BILL_AMT{i}" for i in range(1, 7)),
                *(f"PAY_AMT{i}" for i in range(1, 7)),
            ),
            # Marital status and education are immutable as in Ustun et al. (2019).
            mutability={"SEX": "none", "EDUCATION": "none", "MARRIAGE": "none", "AGE": "increase"},
        ),
        TabularSpec(
            name="california",
            path="california/housing.csv",
            label="median_house_value",
            description="California housing (1990): 20,433 districts, 13 columns after one-hot; 1 = value >= median (real, tabular)",
            source="the Hands-On ML data https://github.com/ageron/handson-ml2 (datasets/housing/housing.csv)",
            target=_california_target,
            clean=_california_clean,
            onehot=("ocean_proximity",),
            mutability={"longitude": "none", "latitude": "none", "ocean_proximity": "none"},
        ),
        TabularSpec(
            name="california_sklearn",
            path="california/housing.csv",
            label="median_house_value",
            description="California housing, scikit-learn's 8 features (fetch_california_housing); 1 = value >= median "
            "(real, tabular)",
            source="the Hands-On ML data https://github.com/ageron/handson-ml2 (datasets/housing/housing.csv)",
            target=_california_target,
            clean=_california_sklearn_clean,
        ),
        TabularSpec(
            name="california_raw",
            path="california/housing.csv",
            label="median_house_value",
            description="California housing, the 8 raw StatLib columns (cal_housing, as TaijaData holds it: no "
            "ocean_proximity); 1 = value >= median (real, tabular)",
            source="the Hands-On ML data https://github.com/ageron/handson-ml2 (datasets/housing/housing.csv)",
            target=_california_target,
            clean=_california_clean,
            drop=("ocean_proximity",),
        ),
        TabularSpec(
            name="compas",
            path="carla/compas.csv",
            label="score",
            # CARLA's target: the COMPAS score class, 1 = low/medium risk (5,028 rows),
            # 0 = high risk (1,144); two_year_recid is kept as a feature as in CARLA.
            description="COMPAS (CARLA): 6,172 defendants, 7 features; 1 = low/medium COMPAS risk score (real, tabular)",
            source=CARLA,
            binary={"c_charge_degree": "F", "race": "African-American", "sex": "Male"},
            integer=("age", "priors_count", "length_of_stay"),
            mutability={
                "age": "increase",
                "two_year_recid": "none",  # an observed outcome, not actionable
                "priors_count": "increase",
                "c_charge_degree": "none",
                "race": "none",
                "sex": "none",
            },
        ),
        TabularSpec(
            name="heloc",
            path="carla/heloc.csv",
            label="RiskPerformance",
            description="FICO HELOC (CARLA): 9,871 applicants, 21 numeric features; 1 = good risk performance (real, tabular)",
            source=CARLA,
            target=lambda df: df["RiskPerformance"].astype(int),
            mutability={
                "MSinceOldestTradeOpen": "increase",
                "NumTrades60Ever2DerogPubRec": "increase",
                "NumTrades90Ever2DerogPubRec": "increase",
            },
        ),
    ]
}


@functools.lru_cache(maxsize=16)
def _encoded(name: str, path: str, mtime_ns: int) -> Dataset:
    # Cached per (file, modification time): repeated loads in one process (tests, sweeps)
    # parse each CSV once. Callers get copies (see ``load_full``).
    return encode(read_csv(Path(path)), SPECS[name])


def load_full(name: str, data_dir: str | os.PathLike | None = None) -> Dataset:
    """The whole data set ``name`` (all rows, unstandardised). Raises FileNotFoundError if absent."""
    if name not in SPECS:
        raise ValueError(f"name: unknown tabular data set {name!r}; expected one of {sorted(SPECS)}")
    spec = SPECS[name]
    path = find_data_file(spec.path, data_dir, source=spec.source)
    data = _encoded(name, str(path), path.stat().st_mtime_ns)
    return data.subset(np.arange(len(data)))  # fresh arrays: the cached copy stays pristine
