"""One training and one scoring loop for any world size: W gloo processes give what one gives.

Each test runs the library's own functions (``train_linkage_gcn``, ``predict_links``)
under a process group of ``world`` CPU ranks and compares with the same calls made
without any process group: scores bitwise, training up to rounding.
"""

import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from torch import distributed as dist

from linkage_gcn.datasets import make_identities
from linkage_gcn.distributed import (
    epoch_generators,
    predict_links_distributed,
    rank_pivots,
    train_distributed,
)
from linkage_gcn.knn import knn
from linkage_gcn.merge import pool_pair_scores, threshold_components
from linkage_gcn.nn import LinkageGCN
from linkage_gcn.samplers import RIWSSampler
from linkage_gcn.training import predict_links, train_linkage_gcn

N, K1, K2, U = 144, 6, 3, 3  # 144 = 9 steps of 8 pivots on each of 2 ranks
GLOBAL_BATCH = 16  # pivots per step over all ranks
SCORING = dict(k1=K1, k2=K2, active_connection=U, batch_size=10, pivot_similarity=True)


def problem():
    X, y = make_identities(60, max_size=15, random_state=0)
    x, y = torch.from_numpy(X[:N]), torch.from_numpy(y[:N])
    index, _ = knn(x, 12)
    return x, index, y


def scoring_model(d):
    torch.manual_seed(0)
    model = LinkageGCN(d + 1, hidden_channels=(16, 16)).eval()
    with torch.no_grad():
        model.norm.running_mean.normal_()
        model.norm.running_var.uniform_(0.5, 1.5)
    return model


def training_model(d):
    # no input batch norm: in training mode it would normalise each rank's batch by itself
    torch.manual_seed(1)
    return LinkageGCN(d + 1, hidden_channels=(16, 16), input_norm=False)


def train(model, x, index, y, batch_size, fn=train_linkage_gcn):
    return fn(
        model, x, index, y, sampler=RIWSSampler(K1, 2.0), k2=K2, active_connection=U,
        loss="ce", epochs=2, batch_size=batch_size, lr=0.05, seed=7, pivot_similarity=True,
        verbose=False,
    )  # fmt: skip


def _worker(rank, world, port, out):
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
    )
    try:
        x, index, y = problem()
        model = scoring_model(x.shape[1])
        everywhere = predict_links(model, x, index, **SCORING)
        on_zero = predict_links(model, x, index, dst=0, **SCORING)
        assert (on_zero is None) == (rank != 0)
        model = training_model(x.shape[1])
        history = train(model, x, index, y, batch_size=GLOBAL_BATCH // world)
        # every rank ends with the same weights (DDP); rank 0's are compared below
        weights = torch.cat([v.reshape(-1).float() for v in model.state_dict().values()])
        gathered = [torch.empty_like(weights) for _ in range(world)]
        dist.all_gather(gathered, weights)
        assert all(torch.equal(g, weights) for g in gathered)
        if rank == 0:
            torch.save(
                {
                    "scores": everywhere,
                    "scores_on_zero": on_zero,
                    "state_dict": model.state_dict(),
                    "losses": [h.loss for h in history],
                    "n_pairs": [h.n_pairs for h in history],
                    "world_size": [h.extra["world_size"] for h in history],
                },
                out,
            )
    finally:
        dist.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_world(world, tmp_path):
    """Rank 0's results of :func:`_worker` on ``world`` gloo processes."""
    out = tmp_path / "rank0.pt"
    # fork where there is one: the children inherit the imported torch and PyG instead of
    # importing them again (seconds each on a busy machine); spawn elsewhere
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    mp.start_processes(_worker, args=(world, free_port(), str(out)), nprocs=world,
                       start_method=method)  # fmt: skip
    return torch.load(out, weights_only=False)


@pytest.mark.parametrize("world", [1, 2])
def test_scoring_under_a_process_group_equals_one_process(world, tmp_path):
    got = run_world(world, tmp_path)
    x, index, y = problem()
    src, dst, scores = predict_links(scoring_model(x.shape[1]), x, index, **SCORING)
    for part in ("scores", "scores_on_zero"):  # bitwise, gathered everywhere or on rank 0
        g_src, g_dst, g_scores = got[part]
        assert torch.equal(g_src, src) and torch.equal(g_dst, dst)
        assert torch.equal(g_scores, scores)
    pairs, pooled = pool_pair_scores(src, dst, scores, num_nodes=N)
    g_pairs, g_pooled = pool_pair_scores(*got["scores"], num_nodes=N)
    np.testing.assert_array_equal(
        threshold_components(g_pairs, g_pooled, N, 0.5), threshold_components(pairs, pooled, N, 0.5)
    )
    # training: W ranks x 16/W pivots per step == 1 process x 16 pivots per step
    model = training_model(x.shape[1])
    history = train(model, x, index, y, batch_size=GLOBAL_BATCH)
    assert got["world_size"] == [world] * 2 and [h.extra["world_size"] for h in history] == [1] * 2
    assert got["n_pairs"] == [h.n_pairs for h in history] == [N * K1] * 2
    np.testing.assert_allclose(got["losses"], [h.loss for h in history], rtol=1e-5)
    for name, value in model.state_dict().items():
        torch.testing.assert_close(got["state_dict"][name], value, rtol=1e-4, atol=1e-5, msg=name)


def test_rank_pivots_cover_each_single_process_batch():
    order = torch.randperm(37, generator=epoch_generators(3, 0)[0])
    world, b = 3, 4
    shards = [rank_pivots(order, r, world) for r in range(world)]
    assert {s.numel() for s in shards} == {13}  # padded: every rank makes the same steps
    for i in range(3):  # step i of the ranks together == step i of one process, batch b * W
        step = torch.cat([s[i * b : (i + 1) * b] for s in shards])
        assert sorted(step.tolist()) == sorted(order[i * b * world : (i + 1) * b * world].tolist())
    assert torch.equal(rank_pivots(order, 0, 1), order)  # one process: every pivot, in order


@pytest.mark.parametrize(
    "rank, world, words",
    [(0, 0, "world_size must be"), (2, 2, r"rank must be in \[0, world_size\) = \[0, 2\)"),
     (-1, 2, r"rank must be in \[0, world_size\)"), (0.5, 2, "rank must be")],
)  # fmt: skip
def test_rank_pivots_refuses_bad_ranks(rank, world, words):
    with pytest.raises((ValueError, TypeError), match=words):
        rank_pivots(torch.arange(10), rank, world)


def test_without_a_process_group_a_destination_rank_must_be_0():
    x, index, _ = problem()
    with pytest.raises(ValueError, match="dst must be a rank"):
        predict_links(scoring_model(x.shape[1]), x, index, dst=1, **SCORING)


def test_the_deprecated_doors_warn_and_give_the_one_loops_results():
    x, index, y = problem()
    with pytest.warns(DeprecationWarning, match="call linkage_gcn.training.predict_links"):
        old = predict_links_distributed(scoring_model(x.shape[1]), x, index, **SCORING)
    new = predict_links(scoring_model(x.shape[1]), x, index, **SCORING)
    assert all(torch.equal(a, b) for a, b in zip(old, new))
    with pytest.warns(DeprecationWarning, match="call linkage_gcn.training.train_linkage_gcn"):
        old_model = training_model(x.shape[1])
        train(old_model, x, index, y, batch_size=GLOBAL_BATCH, fn=train_distributed)
    new_model = training_model(x.shape[1])
    train(new_model, x, index, y, batch_size=GLOBAL_BATCH)
    for a, b in zip(old_model.state_dict().values(), new_model.state_dict().values()):
        assert torch.equal(a, b)


def test_cli_train_under_torchrun(tmp_path):
    # `torchrun ... linkage-gcn train`: both ranks train the estimator on their share of the
    # pivots (DDP) and score with the sharded scorer; rank 0 alone reports and saves
    import os
    import subprocess
    import sys

    from linkage_gcn import LinkageClusterer
    from linkage_gcn.metrics import bcubed_fscore

    X, y = make_identities(60, max_size=15, random_state=0)
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "y.npy", y)
    ckpt = tmp_path / "m.pt"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", "-m", "linkage_gcn.cli", "train", "--feat_path", str(tmp_path / "x.npy"),
           "--labels_path", str(tmp_path / "y.npy"), "--checkpoint", str(ckpt),
           "--k-at-hop", "4", "2", "--active_connection", "2", "--epochs", "1",
           "--batch-size", "8", "--threads", "1", "--quiet"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("saved ") == 1  # rank 0 only
    est = LinkageClusterer.load(ckpt)
    assert est.history_[0]["extra"]["world_size"] == 2
    labels = est.set_params(verbose=False).predict(X)
    assert bcubed_fscore(y, labels)[2] > 0.5
