"""The Ray executor: a grid stopped by SIGTERM on a private local instance recovers, and a grid runs on
a real two-node cluster on this machine. One file, so the two Ray tests run one after the other on one
xdist worker instead of one worker idling on ``ray_exclusive`` while the other's runs."""

import dataclasses
import signal

import pytest

from disentangle.orchestration import grid
from disentangle.base import runs

from conftest import assert_tensorboard_holds_the_log
from test_interruptions import check_a_stopped_grid_recovers, train_reference

pytestmark = pytest.mark.slow

TINY = {"steps": 6, "batch_size": 8, "fixed": {"latent_dim": 3}}


def test_a_stopped_ray_grid_recovers(tmp_path_factory, tmp_path, ray_exclusive):
    """The fault sweep's grid case on Ray (``tests/test_interruptions.py::test_grid``), against a reference
    trained here (the grid case compares weights only, so it needs no scored reference)."""
    pytest.importorskip("ray")
    check_a_stopped_grid_recovers(train_reference(tmp_path_factory.mktemp("reference")), tmp_path, "ray", signal.SIGTERM)


def test_ray_executor_on_a_two_node_cluster(tmp_path, ray_exclusive):
    """A Ray head and a second node, each its own raylet process on this machine (one CPU each):
    the runs spread over both and every worker sees the shared runs folder. (A grid on a private local
    instance, interrupted and then finished, is ``test_a_stopped_ray_grid_recovers`` above.)"""
    pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    # started as the README advises (`RAY_worker_niceness=0 ray start`): Ray's default 15 starves the runs beside other tests
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False, "_system_config": {"worker_niceness": 0}})
    cluster.add_node(num_cpus=1)
    try:
        configs = grid.expand("beta_vae", "dsprites", betas=(1.0, 4.0), seeds=(0,), **TINY)
        configs = [dataclasses.replace(c, loggers=["tensorboard"], log_every=2) for c in configs]  # trackers run where the run runs
        results = grid.run_grid(configs, tmp_path, ("mig",), executor="ray", workers=2, profile="tiny", progress=False, threads=1,
                                executor_options={"address": cluster.address, "max_pending": 1})  # one in flight at a time
        assert [r.outcome for r in results] == ["done"] * 2, [r.detail for r in results]
        assert all("mig.discrete_mig" in runs.read_metrics(tmp_path / r.run_id) for r in results)
        for result in results:
            assert_tensorboard_holds_the_log(tmp_path / result.run_id)
    finally:
        import ray

        ray.shutdown()
        cluster.shutdown()


def test_a_private_instance_runs_its_tasks_at_the_local_executors_priority(ray_exclusive):
    """Ray starts its workers at niceness 15, below every other process, so beside anything busy a grid's runs
    starved (a grid of 23 s alone took 5 min beside two busy loops on the 2-core Zen 3); the private instance runs them at 0,
    as the local executor's worker processes, unless the executor is told otherwise."""
    pytest.importorskip("ray")
    import functools
    import os

    from disentangle.orchestration.executors import EXECUTORS

    def niceness_task():
        task = functools.partial(os.nice, 0)  # a task is a callable with the threads it wants
        task.threads = 1
        return task

    assert list(EXECUTORS.build("ray", workers=1).run([niceness_task()])) == [os.nice(0)]
    assert list(EXECUTORS.build("ray", workers=1, niceness=7).run([niceness_task()])) == [os.nice(0) + 7]


def test_submission_keeps_at_most_its_window_in_flight():
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    from disentangle.orchestration.executors.base import bounded_submission

    in_flight, most = [], []

    def first(handles):
        most.append(len(handles))
        done, _ = wait(handles, return_when=FIRST_COMPLETED)
        finished = next(iter(done))
        return finished, [h for h in handles if h is not finished]

    with ThreadPoolExecutor(4) as pool:
        results = [f.result() for f in bounded_submission(range(50), lambda n: pool.submit(pow, n, 2), first, window=3, in_flight=in_flight)]
    assert sorted(results) == [n * n for n in range(50)] and max(most) == 3 and not in_flight
