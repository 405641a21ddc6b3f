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

import functools
import io
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from cfx.data.dataset import Dataset
from cfx.data._tabular_spec import TabularSpec, encode, from_frame  # noqa: F401  (cfx.data imports from_frame here)

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
