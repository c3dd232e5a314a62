"""The Ray executor on a real two-node cluster on this machine."""

import pytest

from disentangle import grid, runs

from conftest import assert_tensorboard_holds_the_log

TINY = {"steps": 6, "batch_size": 8, "fixed": {"latent_dim": 3}}


@pytest.mark.slow
def test_ray_executor_on_a_two_node_cluster(tmp_path, ray_exclusive):
    """A Ray head and a second node, each its own raylet process on this machine (one CPU each):
    the runs spread over both and every worker sees the shared runs folder. (A grid on a private local
    instance, interrupted and then finished, is ``tests/test_fault_sweep.py::test_grid[ray-SIGTERM]``.)"""
    pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    try:
        configs = grid.expand("beta_vae", "dsprites", betas=(1.0, 4.0), seeds=(0,), **TINY)
        for config in configs:
            config.loggers, config.log_every = ["tensorboard"], 2  # trackers run where the run runs
        results = grid.run_grid(configs, tmp_path, ("mig",), executor="ray", workers=2, profile="tiny", progress=False, threads=1,
                                executor_options={"address": cluster.address})
        assert [r.outcome for r in results] == ["done"] * 2, [r.detail for r in results]
        assert all("mig.discrete_mig" in runs.read_metrics(tmp_path / r.run_id) for r in results)
        for result in results:
            assert_tensorboard_holds_the_log(tmp_path / result.run_id)
    finally:
        import ray

        ray.shutdown()
        cluster.shutdown()
