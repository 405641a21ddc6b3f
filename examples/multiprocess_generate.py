"""Multi-process counterfactual search with ``jax.distributed``: each process searches its share.

Launch this script once per process. Every process builds the same data set and model
(seeded; process 0's parameters are then broadcast, so all hold identical ones), takes its
share of the factuals the model rejects, and calls ``cfx.generate`` on that share. One search
runs over every device of every process (a 1-D "batch" mesh); each process gets its own rows
back, and their global ids start after the rows of the lower-ranked processes, so the rows
together equal a single-process search over all factuals. (A real job would load only its
own shard of the factuals; here every process draws the same synthetic set and slices it.)

    # one machine: spawn 2 processes × 2 CPU devices, then compare with one process
    python examples/multiprocess_generate.py --local 2 --check

    # by hand, the same command on every process
    python examples/multiprocess_generate.py --process-id 0 --num-processes 2 --coordinator 127.0.0.1:12345 &
    python examples/multiprocess_generate.py --process-id 1 --num-processes 2 --coordinator 127.0.0.1:12345

    # SLURM: one task per GPU (rank, task count and coordinator from SLURM_PROCID, SLURM_NTASKS
    # and the first node of SLURM_JOB_NODELIST)
    srun --nodes=2 --ntasks-per-node=4 --gpus-per-task=1 python examples/multiprocess_generate.py
    # ... or one task per node, driving all of the node's GPUs
    srun --nodes=2 --ntasks-per-node=1 --gpus-per-node=4 python examples/multiprocess_generate.py --task-per-node

    # TPU pod (or any cluster JAX detects): jax.distributed.initialize() with no arguments
    gcloud compute tpus tpu-vm ssh NAME --worker=all --command="python examples/multiprocess_generate.py --auto"

Each process prints a summary of its rows and writes ``OUT/rows-{process}.npz`` (global row
ids, factuals, counterfactuals, outcome, steps); ``--local`` also prints the combined summary.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    launch = p.add_argument_group("launch (explicit arguments win over SLURM variables)")
    launch.add_argument("--process-id", type=int, help="this process's rank (default: SLURM_PROCID)")
    launch.add_argument("--num-processes", type=int, help="number of processes (default: SLURM_NTASKS)")
    launch.add_argument(
        "--coordinator",
        help="host:port of process 0 (default under SLURM: the first node of SLURM_JOB_NODELIST and --port)",
    )
    launch.add_argument("--port", type=int, help="coordinator port under SLURM (default: derived from SLURM_JOB_ID)")
    launch.add_argument(
        "--task-per-node",
        action="store_true",
        help="SLURM with one task per node: use all of the node's GPUs (JAX otherwise gives each "
        "task the one GPU numbered by SLURM_LOCALID)",
    )
    launch.add_argument(
        "--auto",
        action="store_true",
        help="jax.distributed.initialize() with no arguments (TPU pods, SLURM, Open MPI, k8s)",
    )
    launch.add_argument("--local", type=int, metavar="N", help="spawn N processes on this machine (CPU) and wait")
    launch.add_argument("--cpu-devices", type=int, default=2, help="--local: CPU devices per process")
    launch.add_argument("--check", action="store_true", help="--local: compare with a single-process search")
    launch.add_argument("--timeout", type=float, default=600, help="--local: seconds before the processes are killed")
    search = p.add_argument_group("search")
    search.add_argument("--data", default="moons")
    search.add_argument(
        "--n-factuals",
        type=int,
        default=1001,
        help="factuals drawn in all (before keeping the rejected ones); an odd count gives the processes uneven shares",
    )
    search.add_argument("--epochs", type=int, default=20)
    search.add_argument("--max-steps", type=int, default=100)
    search.add_argument("--batch-size", type=int, help="rows per compiled chunk and process (default: all)")
    search.add_argument("--seed", type=int, default=0)
    search.add_argument("--out", default=os.path.join("results", "multiprocess_generate"))
    return p.parse_args(argv)


# ============================================================================ launching
def first_host(nodelist: str) -> str:
    """The first host of a SLURM node list: 'gpu[03-05,9],cpu1' -> 'gpu03'; 'a1,b2' -> 'a1'."""
    match = re.match(r"([^,\[]+)(\[([^\],\-]+))?", nodelist.strip())
    if not match:
        raise ValueError(f"cannot read a host from SLURM_JOB_NODELIST={nodelist!r}")
    return match.group(1) + (match.group(3) or "")


def initialize(args) -> None:
    """``jax.distributed.initialize`` from the arguments, or from SLURM's variables, or auto."""
    import jax

    if args.auto:
        jax.distributed.initialize()
        return
    env = os.environ
    process_id = args.process_id if args.process_id is not None else _int_env("SLURM_PROCID")
    num_processes = args.num_processes if args.num_processes is not None else _int_env("SLURM_NTASKS")
    coordinator = args.coordinator
    if coordinator is None and "SLURM_JOB_NODELIST" in env:
        port = args.port or 65535 - 4095 + int(env.get("SLURM_JOB_ID", "0")) % 4096  # as JAX's own SLURM detection
        coordinator = f"{first_host(env['SLURM_JOB_NODELIST'])}:{port}"
    if None in (process_id, num_processes, coordinator):
        sys.exit("give --process-id, --num-processes and --coordinator, run under srun, or use --auto / --local N")
    local_device_ids = None
    if args.task_per_node and "SLURM_GPUS_ON_NODE" in env:
        local_device_ids = list(range(int(env["SLURM_GPUS_ON_NODE"])))
    jax.distributed.initialize(
        coordinator_address=coordinator,
        num_processes=num_processes,
        process_id=process_id,
        local_device_ids=local_device_ids,
    )


def _int_env(name: str) -> int | None:
    return int(os.environ[name]) if name in os.environ else None


def spawn(args) -> int:
    """``--local N``: run this script as N processes on 127.0.0.1 (CPU, ``--cpu-devices`` each)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    passed = [a for a in sys.argv[1:] if a not in ("--check",)]
    passed = _drop_option(_drop_option(_drop_option(passed, "--local"), "--cpu-devices"), "--timeout")
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=f"--xla_force_host_platform_device_count={args.cpu_devices}")
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                os.path.abspath(__file__),
                *passed,
                "--process-id",
                str(i),
                "--num-processes",
                str(args.local),
                "--coordinator",
                f"127.0.0.1:{port}",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(args.local)
    ]
    failed = False
    for i, proc in enumerate(procs):
        try:
            out = proc.communicate(timeout=args.timeout)[0]
        except subprocess.TimeoutExpired:
            for other in procs:
                other.kill()
            out, failed = proc.communicate()[0] + "\n(timed out)", True
        failed |= proc.returncode != 0
        print(
            "".join(
                f"[process {i}] {line}\n"
                for line in out.splitlines()
                if "[Gloo]" not in line and "peer ranks" not in line
            ),
            end="",
        )
    if failed:
        return 1
    parts = [np.load(os.path.join(args.out, f"rows-{i}.npz")) for i in range(args.local)]
    rows = {k: np.concatenate([part[k] for part in parts]) for k in parts[0].files}
    assert np.array_equal(rows["row"], np.arange(len(rows["row"]))), "rows out of order"
    print(f"all {args.local} processes: {summary(rows['outcome'], rows['steps'])}")
    if args.check:
        import jax

        import cfx

        _, clf, x = problem(args)
        single = cfx.generate(
            generator().replace(start="noise"),
            clf,
            x,
            1,
            key=jax.random.key(args.seed),
            max_steps=args.max_steps,
            batch_size=args.batch_size,
        )
        diff = float(np.max(np.abs(rows["counterfactuals"] - np.asarray(single.counterfactuals))))
        same = np.array_equal(rows["steps"], single.steps) and np.array_equal(rows["outcome"], single.outcome)
        print(
            f"single process: {summary(single.outcome, single.steps)}; max |Δx'| {diff:.2e}, "
            f"steps and outcomes {'equal' if same else 'DIFFER'}"
        )
        return 0 if same and diff < 1e-4 else 1
    return 0


def _drop_option(argv: list[str], name: str) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == name:
            skip = True
        elif not a.startswith(name + "="):
            out.append(a)
    return out


# ============================================================================ the search
def problem(args):
    """(train, classifier, all factuals): the same on every process (same seeds)."""
    import cfx

    train, _ = cfx.data.train_test(cfx.data.load(args.data, n=2000, seed=args.seed), seed=args.seed)
    clf = cfx.models.fit(train, model="mlp", epochs=args.epochs, seed=args.seed)
    pool, _ = cfx.data.train_test(
        cfx.data.load(args.data, n=2 * args.n_factuals, seed=args.seed + 1), test_size=0.5, seed=args.seed
    )
    x = np.asarray(pool.X[: args.n_factuals])
    return train, clf, x[np.asarray(clf.predict(x)) == 0]  # the factuals the model rejects


def generator():
    """Generic (yloss + 0.1·L1) with Adam and a noisy start: the start is keyed per global row."""
    import cfx

    return cfx.generators.Generic(optimizer="adam", learning_rate=0.05)


def summary(outcome, steps) -> str:
    outcome, steps = np.asarray(outcome), np.asarray(steps)
    return f"{len(outcome)} rows, converged {np.mean(outcome == 0):.1%}, mean steps {np.mean(steps):.1f}"


def run(args) -> None:
    import jax
    from jax.experimental import multihost_utils

    import cfx

    p, count = jax.process_index(), jax.process_count()
    _, clf, x = problem(args)
    # Every process must hold identical parameters (cfx.generate checks a fingerprint): take process 0's.
    clf = clf.replace(params=multihost_utils.broadcast_one_to_all(clf.params))
    counts = [len(part) for part in np.array_split(np.arange(len(x)), count)]
    offset = sum(counts[:p])
    mine = x[offset : offset + counts[p]]
    began = time.perf_counter()
    res = cfx.generate(
        generator().replace(start="noise"),
        clf,
        mine,
        1,
        key=jax.random.key(args.seed),
        max_steps=args.max_steps,
        batch_size=args.batch_size,
    )  # multiprocess: automatic
    seconds = time.perf_counter() - began
    print(
        f"process {p}/{count} ({jax.local_device_count()} of {jax.device_count()} devices): rows "
        f"{offset}..{offset + counts[p] - 1}: {summary(res.outcome, res.steps)}; {seconds:.2f} s "
        f"(compile {float(res.compile_s):.2f} s)",
        flush=True,
    )
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, f"rows-{p}.npz")
    with tempfile.NamedTemporaryFile(dir=args.out, suffix=".npz", delete=False) as f:  # atomic: temp + rename
        np.savez(
            f,
            row=np.arange(offset, offset + counts[p]),
            factuals=mine,
            counterfactuals=np.asarray(res.counterfactuals),
            outcome=np.asarray(res.outcome),
            steps=np.asarray(res.steps),
        )
    os.replace(f.name, path)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.local:
        return spawn(args)
    initialize(args)
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
