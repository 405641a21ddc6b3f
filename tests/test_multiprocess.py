"""Multi-process search (cfx.distributed): two local processes under jax.distributed give the
single-process result; bad multi-process input and device lists raise before compiling."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cfx
from cfx.search import _distributed as distributed

KEY = jax.random.key(0)
SHARES = (7, 5)  # uneven on purpose: process 1 pads its block to 7 rows


def _problem():
    """A plain-JAX linear classifier (p(1|x) = sigmoid(x_0 + x_1 − 1)) and 12 factuals; the
    worker script builds the same."""
    clf = cfx.Classifier(
        lambda p, x: x @ p["W"] + p["b"],
        {"W": jnp.array([[-0.5, 0.5], [-0.5, 0.5]]), "b": jnp.array([0.5, -0.5])},
        n_features=2,
    )
    x = np.random.default_rng(0).uniform(-1.5, 0.0, size=(sum(SHARES), 2)).astype(np.float32)
    target = np.array([1, 1, 0, 1, 1, 1, 1, 1, 1, 0, 1, 1], np.int32)  # two rows already there
    return clf, x, target


WORKER = r"""
import sys
import numpy as np
import jax

pid, port, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=2, process_id=pid,
                           initialization_timeout=60)
import cfx
from tests.test_multiprocess import SHARES, _problem, _runs

assert (jax.process_count(), jax.device_count(), jax.local_device_count()) == (2, 4, 2), jax.devices()
clf, x, target = _problem()
mine = slice(0, SHARES[0]) if pid == 0 else slice(SHARES[0], sum(SHARES))
gen = cfx.generators.Generic()


def raises(match, **kwargs):
    args = dict(key=jax.random.key(0))
    args.update(kwargs)
    try:
        cfx.generate(gen.replace(start="noise"), clf, args.pop("x", x[mine]), target[mine], **args)
    except (ValueError, TypeError) as err:
        assert match in str(err), (match, str(err))
    else:
        raise AssertionError(f"no error for {kwargs}")


# bad input, before compiling: each process fails, and none waits for the other
raises("of process", multiprocess=False, devices=jax.devices())  # another process's devices, locally
raises("same number of devices", devices=jax.devices()[:3])  # 2 on process 0, 1 on process 1
bad = x[mine].copy()
if pid == 1:
    bad[0, 0] = np.nan
raises("NaN" if pid == 1 else "process(es) [1] rejected their inputs", x=bad)
raises("differ between processes", key=jax.random.key(pid))
raises("disagree on max_steps", max_steps=100 + pid)

results = {}
for name, (fields, kwargs) in _runs().items():
    res = cfx.generate(gen.replace(**fields), clf, x[mine], target[mine], key=jax.random.key(0), multiprocess=name == "chunked" or None,
                       **kwargs)
    assert res.counterfactuals.shape[0] == SHARES[pid], res.counterfactuals.shape
    for field in ("counterfactuals", "outcome", "steps", "target_probs"):
        results[f"{name}.{field}"] = np.asarray(getattr(res, field))

# locally (multiprocess=False) each process searches alone with row ids from 0: process 0's
# rows are then the same as in the global search, process 1's start from other noise
alone = cfx.generate(gen.replace(**_runs()["whole"][0]), clf, x[mine], target[mine], key=jax.random.key(0),
                     multiprocess=False)
same = np.allclose(alone.counterfactuals, results["whole.counterfactuals"], atol=1e-6)
assert same == (pid == 0), (pid, same)
np.savez(out, **results)
print("worker ok", pid)
"""


def _runs() -> dict:
    """The searches both the workers and the single-process reference run: a noisy start keyed
    per row (so wrong row ids would show), K = 2, and chunks of 3 padded rows per process."""
    fields = dict(start="noise", num_counterfactuals=2)  # the generator's (generator.replace)
    return {"whole": (fields, {}), "chunked": (fields, dict(batch_size=3, max_steps=40))}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_give_the_single_process_result(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(
        os.environ,
        JAX_PLATFORMS="cpu",
        XLA_FLAGS="--xla_force_host_platform_device_count=2",
        PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]),
    )
    port = _free_port()
    outs = [tmp_path / f"rows{p}.npz" for p in range(2)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(p), str(port), str(outs[p])],
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for p in range(2)
    ]
    logs = []
    try:
        for proc in procs:  # a hang (a peer that never comes) fails the test instead of blocking CI
            logs.append(proc.communicate(timeout=240)[0])
    except subprocess.TimeoutExpired:
        for proc in procs:
            proc.kill()
        pytest.fail("the two-process search timed out:\n" + "\n".join(p.communicate()[0][-3000:] for p in procs))
    for p, (proc, log) in enumerate(zip(procs, logs)):
        assert proc.returncode == 0 and f"worker ok {p}" in log, f"process {p}:\n{log[-5000:]}"

    parts = [np.load(out) for out in outs]
    clf, x, target = _problem()
    for name, (fields, kwargs) in _runs().items():
        single = cfx.generate(cfx.generators.Generic(**fields), clf, x, target, key=KEY, **kwargs)
        joined = {
            f: np.concatenate([part[f"{name}.{f}"] for part in parts])
            for f in ("counterfactuals", "outcome", "steps", "target_probs")
        }
        assert joined["counterfactuals"].shape == (12, 2, 2)
        np.testing.assert_allclose(joined["counterfactuals"], single.counterfactuals, atol=1e-5)
        np.testing.assert_allclose(joined["target_probs"], single.target_probs, atol=1e-5)
        np.testing.assert_array_equal(joined["outcome"], single.outcome)
        np.testing.assert_array_equal(joined["steps"], single.steps)
    # the noisy starts differ row by row (global row ids), so the rows did not share keys
    assert len(np.unique(np.round(joined["counterfactuals"][:, 0, 0], 4))) > 6


# ------------------------------------------------------------------------------ bad input, one process
def test_multiprocess_mode_without_jax_distributed_is_an_error():
    clf, x, target = _problem()
    with pytest.raises(ValueError, match=r"multiprocess=True needs .*jax\.distributed\.initialize"):
        cfx.generate(cfx.generators.Generic(), clf, x, target, key=KEY, multiprocess=True)
    with pytest.raises(TypeError, match="multiprocess must be True, False or None"):
        cfx.generate(cfx.generators.Generic(), clf, x, target, key=KEY, multiprocess="yes")


def test_devices_that_do_not_form_the_mesh_are_errors():
    clf, x, target = _problem()
    gen = cfx.generators.Generic()
    device = jax.local_devices()[0]
    cases = [
        ([device, device], ValueError, "devices lists a device more than once"),
        ([], ValueError, "devices must name at least one device"),
        (["cpu:0"], TypeError, "devices must be jax devices"),
        ("cpu", TypeError, "devices must be a sequence of jax devices"),
    ]
    for devices, error, match in cases:
        with pytest.raises(error, match=match):
            cfx.generate(gen, clf, x, target, key=KEY, devices=devices)


def _fake(platform="cpu", process_index=0, ident=0):
    return types.SimpleNamespace(platform=platform, process_index=process_index, id=ident)


def test_device_checks_of_a_mesh_across_processes():
    local = dict(multiprocess=False, process_index=0, process_count=2)
    with pytest.raises(ValueError, match="devices mixes platforms"):
        distributed.check_devices([_fake("cpu"), _fake("gpu", ident=1)], **local)
    with pytest.raises(ValueError, match=r"devices includes .* of process 1; a local search"):
        distributed.check_devices([_fake(), _fake(process_index=1, ident=1)], **local)
    multi = dict(multiprocess=True, process_index=0, process_count=2)
    with pytest.raises(ValueError, match=r"same number of devices .* got \[2, 1\]"):
        distributed.check_devices([_fake(ident=0), _fake(ident=1), _fake(process_index=1, ident=2)], **multi)
    with pytest.raises(ValueError, match=r"got \[1, 0\]"):  # a process with none
        distributed.check_devices([_fake()], **multi)
    # grouped by process, each process's own order kept
    mesh = distributed.check_devices(
        [_fake(process_index=1, ident=3), _fake(ident=1), _fake(process_index=1, ident=2), _fake(ident=0)], **multi
    )
    assert [(d.process_index, d.id) for d in mesh] == [(0, 1), (0, 0), (1, 3), (1, 2)]


def test_a_share_counts_rows_of_lower_ranked_processes():
    share = distributed.Share((7, 5, 2, 3), process=3)
    assert (share.rows, share.offset, share.most, share.total, share.processes) == (3, 14, 7, 17, 4)
    assert distributed.resolve_mode(None) is False and distributed.resolve_mode(False) is False
