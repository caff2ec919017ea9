import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from linkage_gcn.datasets import make_identities
from linkage_gcn.knn import knn
from linkage_gcn.nn import LinkageGCN
from linkage_gcn.samplers import RIWSSampler, TopKSampler
from linkage_gcn.training import predict_links, train_linkage_gcn


def small_problem(seed=0):
    X, y = make_identities(60, max_size=15, random_state=seed)
    index, _ = knn(X, 12)
    return torch.from_numpy(X), torch.from_numpy(index), torch.from_numpy(y)


def train(x, index, y, seed, **kwargs):
    torch.manual_seed(seed)
    model = LinkageGCN(x.shape[1], hidden_channels=(32, 32))
    history = train_linkage_gcn(
        model, x, index, y, sampler=kwargs.pop("sampler", TopKSampler(6)), k2=3,
        active_connection=3, epochs=kwargs.pop("epochs", 2), batch_size=8,
        generator=torch.Generator().manual_seed(seed), verbose=False, **kwargs,
    )  # fmt: skip
    return model, history


def test_training_learns_and_reports_stats():
    x, index, y = small_problem()
    seen = []
    model, history = train(x, index, y, 0, epochs=3, lr=0.05, lr_decay=0.5, callback=seen.append)
    assert len(history) == 3 and seen == history
    assert history[0].lr == 0.05 and abs(history[1].lr - 0.025) < 1e-12
    assert history[-1].loss < history[0].loss
    assert history[-1].n_pairs == x.shape[0] * 6
    src, dst, scores = predict_links(
        model, x, index, k1=6, k2=3, active_connection=3, batch_size=50
    )
    assert src.shape == dst.shape == scores.shape == (x.shape[0] * 6,)
    assert torch.equal(dst.view(-1, 6), index[:, :6])
    assert bool(((scores >= 0) & (scores <= 1)).all())
    # the trained scores rank same-identity links above the others
    same = y[src] == y[dst]
    assert roc_auc_score(same.numpy(), scores.numpy()) > 0.85


def test_training_is_reproducible_from_the_generator():
    x, index, y = small_problem()
    m1, h1 = train(x, index, y, 3, sampler=RIWSSampler(6, 2.0), loss="cb-graph")
    m2, h2 = train(x, index, y, 3, sampler=RIWSSampler(6, 2.0), loss="cb-graph")
    assert [h.loss for h in h1] == [h.loss for h in h2]
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values()):
        assert torch.equal(a, b)


def test_inference_batch_size_does_not_change_scores():
    x, index, y = small_problem()
    model, _ = train(x, index, y, 0, epochs=1)
    a = predict_links(model, x, index, k1=6, k2=3, active_connection=3, batch_size=7)[2]
    b = predict_links(model, x, index, k1=6, k2=3, active_connection=3, batch_size=1000)[2]
    np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)
