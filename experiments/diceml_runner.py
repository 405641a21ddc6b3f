"""dice-ml's side of experiments/compare_diceml.py: runs in a separate environment that has
dice-ml (never a cfx dependency) and imports nothing from cfx.

Input: a folder written by compare_diceml.py: ``model.npz`` (the cfx MLP's weights, the
encoder's mean and scale), ``spec.json`` (the raw columns, how each is encoded, the continuous
and mutable columns, increase-/decrease-only columns, the label), ``train.csv`` (raw training
rows with the label) and ``factuals.csv`` (raw rows, indexed by id). ``--method gradient`` (DiCE's own gradient search,
dice-ml's PyTorch implementation; needs torch) gets the MLP as a PyTorch module on dice-ml's
encoding (:func:`torch_model`), checked against cfx's probabilities too. The model is re-implemented
in numpy (encode, standardise, ReLU MLP) and checked against the cfx probabilities in
``check.npz``. Output: ``diceml_<method>.csv`` (every counterfactual's raw values with the
factual's id) and ``diceml_<method>.json`` (seconds per factual, failures).

    /tmp/xvenv/bin/python experiments/diceml_runner.py FOLDER --method random --k 3
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import warnings

import numpy as np
import pandas as pd


class NumpyModel:
    """predict_proba on raw DataFrames: the cfx encoder's encoding, then the MLP."""

    def __init__(self, folder):
        z = np.load(os.path.join(folder, "model.npz"))
        self.layers = [(z[f"W{i}"], z[f"b{i}"]) for i in range(int(z["n_layers"]))]
        self.mean, self.scale = z["mean"], z["scale"]
        self.spec = json.load(open(os.path.join(folder, "spec.json")))

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        blocks = []
        for col in self.spec["columns"]:
            s = frame[col["name"]]
            if col["kind"] in ("continuous", "integer"):
                blocks.append(s.astype(np.float64).to_numpy()[:, None])
            elif col["kind"] == "ordinal":
                blocks.append(
                    s.map({str(v): i for i, v in enumerate(col["levels"])}).astype(np.float64).to_numpy()[:, None]
                )
            elif col["kind"] == "binary":
                blocks.append((s.astype(str) == str(col["levels"][1])).astype(np.float64).to_numpy()[:, None])
            else:  # categorical: one-hot over every level
                blocks.append(
                    np.stack([(s.astype(str) == str(v)).to_numpy() for v in col["levels"]], 1).astype(np.float64)
                )
        raw = np.column_stack(blocks).astype(np.float32)
        return ((raw - self.mean) / self.scale).astype(np.float32)

    def logits(self, X):
        h = X
        for i, (W, b) in enumerate(self.layers):
            h = h @ W + b
            if i < len(self.layers) - 1:
                h = np.maximum(h, 0.0)
        return h

    def predict_proba(self, frame):
        lg = self.logits(self.encode(frame))
        e = np.exp(lg - lg.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    def predict(self, frame):
        return self.predict_proba(frame).argmax(1)


def torch_model(model: NumpyModel, data, spec):
    """The same MLP as a PyTorch module on dice-ml's own encoding (continuous columns min-max
    scaled to [0, 1], every other column one-hot over its levels), for the gradient method:
    a linear map to cfx's raw encoding (levels of a binary column: indicator of the second;
    ordinal: the level's index), then the standardisation and the layers; output p(1) (1 node)."""
    import torch

    names = list(
        data.get_ohe_min_max_normalized_data(data.data_df.iloc[[0]][[c["name"] for c in spec["columns"]]]).columns
    )
    blocks, offset = {}, 0
    for col in spec["columns"]:
        width = len(col["levels"]) if col["kind"] == "categorical" else 1
        blocks[col["name"]] = (offset, col)
        offset += width
    A, b = np.zeros((len(names), offset)), np.zeros(offset)
    frame = data.data_df
    for i, name in enumerate(names):
        if name in spec["continuous"]:
            start, _ = blocks[name]
            lo, hi = float(frame[name].min()), float(frame[name].max())
            A[i, start], b[start] = hi - lo, b[start] + lo
            continue
        col_name = next(
            c["name"]
            for c in spec["columns"]
            if name.startswith(c["name"] + "_") and name[len(c["name"]) + 1 :] in c["levels"]
        )
        start, col = blocks[col_name]
        level = col["levels"].index(name[len(col_name) + 1 :])
        if col["kind"] == "categorical":
            A[i, start + level] = 1.0
        elif col["kind"] == "binary":
            A[i, start] = float(level == 1)
        else:  # ordinal: the index of its level
            A[i, start] = float(level)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            f32 = lambda a: torch.tensor(np.asarray(a, np.float32))  # noqa: E731
            self.A, self.b, self.mean, self.scale = f32(A), f32(b), f32(model.mean), f32(model.scale)
            self.layers = [(f32(W), f32(c)) for W, c in model.layers]

        def forward(self, u):
            h = ((u.float() @ self.A + self.b) - self.mean) / self.scale
            for i, (W, c) in enumerate(self.layers):
                h = h @ W + c
                if i < len(self.layers) - 1:
                    h = torch.relu(h)
            return torch.sigmoid(h[..., 1:2] - h[..., 0:1])

    return Net()


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--method", default="random", choices=["random", "genetic", "kdtree", "gradient"])
    ap.add_argument("--k", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--first", type=int, default=None, help="only the first N factuals (the gradient method is slow)")
    args = ap.parse_args(argv)
    import dice_ml

    folder = args.folder
    spec = json.load(open(os.path.join(folder, "spec.json")))
    model = NumpyModel(folder)
    strings = [c["name"] for c in spec["columns"] if c["name"] not in spec["continuous"]]
    train = pd.read_csv(os.path.join(folder, "train.csv"))
    facts = pd.read_csv(os.path.join(folder, "factuals.csv"), index_col=0).iloc[: args.first]
    for c in strings:  # dice-ml's categorical features are strings
        train[c], facts[c] = train[c].astype(str), facts[c].astype(str)
    check = np.load(os.path.join(folder, "check.npz"))
    check = {"p": check["p"][: len(facts)]}
    p = model.predict_proba(facts)[:, 1]
    assert np.allclose(p, check["p"], atol=1e-4), f"numpy model disagrees with cfx: {np.abs(p - check['p']).max()}"

    data = dice_ml.Data(dataframe=train, continuous_features=spec["continuous"], outcome_name=spec["label"])
    if args.method == "gradient":  # DiCE itself (Mothilal et al. 2020): the PyTorch implementation
        import torch

        torch.manual_seed(args.seed)
        net = torch_model(model, data, spec)
        wrapped = dice_ml.Model(model=net, backend="PYT", func="ohe-min-max")
        explainer = dice_ml.Dice(data, wrapped, method="gradient")
        enc = explainer.data_interface.get_ohe_min_max_normalized_data(facts)
        q = net(torch.tensor(enc.to_numpy(np.float64))).detach().numpy()[:, 0]
        assert np.allclose(q, check["p"], atol=1e-4), f"torch model disagrees with cfx: {np.abs(q - check['p']).max()}"
    else:
        wrapped = dice_ml.Model(model=model, backend="sklearn", model_type="classifier")
        explainer = dice_ml.Dice(data, wrapped, method=args.method)
    lo, hi = train[spec["continuous"]].min(), train[spec["continuous"]].max()
    out, seconds, failed = [], [], []
    np.random.seed(args.seed)
    for rid, row in facts.iterrows():
        query = row.to_frame().T.astype(facts.dtypes.to_dict())
        # cfx's directions as dice-ml ranges: an increase-only column may go from the row's value up
        ranges = {c: [float(lo[c]), float(hi[c])] for c in spec["continuous"]} if args.method == "gradient" else {}
        ranges.update({c: [float(row[c]), float(hi[c])] for c in spec["increase"]})  # gradient: needs every column
        ranges.update({c: [float(lo[c]), float(row[c])] for c in spec["decrease"]})
        began = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                kw = dict(
                    total_CFs=args.k,
                    desired_class=1,
                    features_to_vary=spec["mutable"],
                    permitted_range=ranges or None,
                    verbose=False,
                )
                if args.method == "random":
                    kw["random_seed"] = args.seed
                res = explainer.generate_counterfactuals(query, **kw)
            cf = res.cf_examples_list[0].final_cfs_df
            if cf is not None and len(cf):
                cf = cf.drop(columns=[spec["label"]], errors="ignore").copy()
                cf.insert(0, "id", rid)
                out.append(cf)
        except Exception as err:  # dice-ml raises when it finds nothing
            failed.append({"id": int(rid), "error": f"{type(err).__name__}: {err}"[:200]})
        seconds.append(time.perf_counter() - began)
    frame = pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=["id", *facts.columns])
    for name, write in (
        (f"diceml_{args.method}.csv", lambda fh: frame.to_csv(fh, index=False)),
        (f"diceml_{args.method}.json", lambda fh: json.dump({"seconds": seconds, "failed": failed, "k": args.k}, fh)),
    ):
        with tempfile.NamedTemporaryFile("w", dir=folder, delete=False) as fh:
            write(fh)
        os.replace(fh.name, os.path.join(folder, name))
    print(
        f"{args.method}: {len(frame)} counterfactuals for {len(facts)} factuals, {np.sum(seconds):.1f} s, "
        f"{len(failed)} failed"
    )


if __name__ == "__main__":
    main()
