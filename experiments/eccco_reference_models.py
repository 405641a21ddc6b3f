"""Score the ECCCo reference's own trained networks with cfx: read the Flux weights out of
ECCCo.jl's ``models/<data>_models.jls`` (Julia ``Serialization``) and put them in place of the
models of a finished ``preset: eccco-2024`` run, whose cells are then recomputed with ``--resume``.

    git -C /work/.mirror/pat-alt+ECCCo.jl/repo show results-camera-ready:models/linearly_separable_models.jls > ls.jls
    git -C ... show results-camera-ready:models/moons_models.jls > moons.jls
    cp -r RUN REF && rm -rf REF/cells REF/*.csv REF/*.md
    python experiments/eccco_reference_models.py REF linearly_separable=ls.jls moons=moons.jls
    cfx run REF/config.yaml --out REF --resume

Reading the file: a Float32 array is serialised as the array tag 0x15, the type Float32 (0x00 0x0d),
its size (a 2-tuple 0x14 0x02 a b, or one length byte; an Int n <= 32 is the byte 0xdf + n) and the
raw little-endian data, column-major, so a Flux weight W (out, in) read row-major is Wᵀ, flax's
kernel. The arrays come in chain order (W, b per Dense layer); a chain ends with the (h, 2) kernel
and the (2,) bias. The file holds, in order, the JEM ensemble's atomic model (whose ``jem`` field
is the single JEM's chain, trained last; the "JEM" entry refers back to it), the JEM ensemble's
five members, the MLP and the MLP ensemble's five members. Only widths <= 32 are handled (the
synthetic data sets).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import flax.serialization
import jax
import numpy as np


def chains(path: Path) -> list[dict]:
    """Every Dense chain of the file, as flax MLP params (hidden_i ..., logits)."""
    b = Path(path).read_bytes()
    arrays = []
    for m in re.finditer(b"\x15\x00\r", b):
        o = m.end()
        if b[o] == 0x14 and b[o + 1] == 0x02 and b[o + 2] >= 0xDF and b[o + 3] >= 0xDF:
            shape, start = (b[o + 2] - 0xDF, b[o + 3] - 0xDF), o + 4
        elif b[o] >= 0xDF:
            shape, start = (b[o] - 0xDF,), o + 1
        else:
            continue
        a = np.frombuffer(b[start : start + 4 * int(np.prod(shape))], "<f4").copy()
        arrays.append(a.reshape(shape[::-1]) if len(shape) == 2 else a)
    out, cur = [], []
    for a in arrays:
        cur.append(a)
        if a.ndim == 1 and a.shape[0] == 2 and len(cur) >= 2 and cur[-2].ndim == 2 and cur[-2].shape[1] == 2:
            names = [f"hidden_{i}" for i in range(len(cur) // 2 - 1)] + ["logits"]
            out.append({"params": {n: {"kernel": cur[2 * i], "bias": cur[2 * i + 1]} for i, n in enumerate(names)}})
            cur = []
    return out


def main() -> None:
    results = Path(sys.argv[1])
    for arg in sys.argv[2:]:
        data, path = arg.split("=", 1)
        nets = chains(Path(path))
        if len(nets) != 12:
            raise SystemExit(f"{path}: expected 12 chains (JEM, 5 JEM members, MLP, 5 MLP members); found {len(nets)}")
        stack = lambda ps: jax.tree_util.tree_map(lambda *a: np.stack(a), *ps)  # noqa: E731
        models = {"jem": nets[0], "jem_ensemble": stack(nets[1:6]), "mlp": nets[6], "ensemble": stack(nets[7:12])}
        for name, params in models.items():
            target = results / "models" / data / name / "run000.msgpack"
            if not target.exists():
                print(f"{data}/{name}: not in this run, skipped")
                continue
            old = flax.serialization.msgpack_restore(target.read_bytes())
            if jax.tree_util.tree_map(np.shape, old) != jax.tree_util.tree_map(np.shape, params):
                raise SystemExit(f"{target}: the run's model has another shape than the reference's {name}")
            target.write_bytes(flax.serialization.msgpack_serialize(params))
            print(f"{data}/{name}: the reference's weights")


if __name__ == "__main__":
    main()
