import logging
import math
import re

import numpy as np
import pytest
import torch
from sklearn.metrics import precision_score, recall_score, roc_auc_score

from linkage_gcn import training
from linkage_gcn.datasets import make_identities
from linkage_gcn.knn import knn
from linkage_gcn.losses import cross_entropy_loss
from linkage_gcn.nn import LinkageGCN
from linkage_gcn.samplers import RIWSSampler, TopKSampler
from linkage_gcn.training import _Counts, predict_links, train_linkage_gcn


def small_problem(seed=0):
    X, y = make_identities(60, max_size=15, random_state=seed)
    index, _ = knn(X, 12)
    return torch.from_numpy(X), torch.from_numpy(index), torch.from_numpy(y)


def train(x, index, y, seed, **kwargs):
    torch.manual_seed(seed)
    sim = kwargs.get("pivot_similarity", False)
    model = LinkageGCN(x.shape[1] + int(sim), hidden_channels=(32, 32))
    history = train_linkage_gcn(
        model, x, index, y, sampler=kwargs.pop("sampler", TopKSampler(6)), k2=3,
        active_connection=3, epochs=kwargs.pop("epochs", 2), batch_size=8,
        generator=torch.Generator().manual_seed(seed), verbose=kwargs.pop("verbose", False),
        **kwargs,
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
    # top-k 1-hop sets: the share of positive pairs is that of the 6 nearest, every epoch
    same = (y[index[:, :6]] == y.unsqueeze(1)).double().mean().item()
    assert all(abs(h.positive_rate - same) < 1e-12 for h in history)
    src, dst, scores = predict_links(
        model, x, index, k1=6, k2=3, active_connection=3, batch_size=50
    )
    assert src.shape == dst.shape == scores.shape == (x.shape[0] * 6,)
    assert torch.equal(src, torch.arange(x.shape[0]).repeat_interleave(6))
    assert torch.equal(dst.view(-1, 6), index[:, :6])
    assert bool(((scores >= 0) & (scores <= 1)).all())
    # the trained scores rank same-identity links above the others
    same = y[src] == y[dst]
    assert roc_auc_score(same.numpy(), scores.numpy()) > 0.85


def test_running_counts_equal_sklearn():
    rng = np.random.default_rng(0)
    counts = _Counts(torch.device("cpu"))
    all_logits, all_targets = [], []
    for step in range(5):
        logits = torch.from_numpy(rng.standard_normal((17, 2)))
        target = torch.from_numpy(rng.integers(0, 2, 17))
        counts.update(logits, target, float(step))
        all_logits.append(logits)
        all_targets.append(target)
    pred = torch.cat(all_logits).argmax(1).numpy()
    true = torch.cat(all_targets).numpy()
    s = counts.summary()
    assert s["loss"] == 2.0  # mean of 0..4
    assert s["precision"] == pytest.approx(precision_score(true, pred))
    assert s["recall"] == pytest.approx(recall_score(true, pred))
    assert s["positive_rate"] == pytest.approx(true.mean())


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


def test_diverging_loss_stops_at_the_first_bad_step_before_updating():
    x, index, y = small_problem()
    steps = math.ceil(x.shape[0] / 8)
    calls = []

    def explodes_at_step_3_of_epoch_2(logits, target):
        calls.append(1)
        loss = cross_entropy_loss(logits, target)
        return loss * float("nan") if len(calls) == steps + 3 else loss

    snapshots = []
    with pytest.raises(FloatingPointError) as info:
        train(x, index, y, 0, loss=explodes_at_step_3_of_epoch_2, lr=0.05,
              callback=lambda s: snapshots.append(s))  # fmt: skip
    message = str(info.value)
    assert f"loss is nan at epoch 2/2, step 3/{steps}" in message
    assert "with lr=0.05 (0.005 in this epoch)" in message
    assert "loss=explodes_at_step_3_of_epoch_2" in message
    assert "lower lr (e.g. lr=0.005)" in message and "another loss (e.g. loss='ce')" in message
    assert len(calls) == steps + 3 and len(snapshots) == 1  # stopped at once


def test_diverged_step_is_not_applied():
    x, index, y = small_problem()
    torch.manual_seed(0)
    model = LinkageGCN(x.shape[1], hidden_channels=(8,))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(FloatingPointError, match="step 1/"):
        train_linkage_gcn(
            model,
            x,
            index,
            y,
            sampler=TopKSampler(6),
            k2=3,
            active_connection=3,
            loss=lambda logits, target: logits.sum() * float("inf"),
            verbose=False,
        )
    for key, value in model.state_dict().items():  # fmt: skip
        if key.endswith("num_batches_tracked") or key.startswith("norm."):
            continue  # batch-norm statistics move in the forward pass, as in any training
        assert torch.equal(value, before[key]), key


def test_one_info_line_per_epoch_as_it_ends(caplog):
    x, index, y = small_problem()
    seen_at_callback = []
    caplog.set_level(logging.INFO, logger="linkage_gcn")
    train(x, index, y, 0, epochs=2, lr=0.05, lr_decay=0.1,
          callback=lambda s: seen_at_callback.append(len(caplog.records)))  # fmt: skip
    lines = [r.getMessage() for r in caplog.records if r.name == "linkage_gcn.training"]
    assert seen_at_callback == [1, 2]  # logged when each epoch ended, not after training
    pattern = r"epoch {}/2: loss \d+\.\d{{4}}, link P \d\.\d{{3}} R \d\.\d{{3}}, lr {}, \d+\.\d s"
    assert re.fullmatch(pattern.format(1, "0.05"), lines[0]), lines[0]
    assert re.fullmatch(pattern.format(2, "0.005"), lines[1]), lines[1]


def test_progress_bar_gets_the_running_postfix(monkeypatch):
    x, index, y = small_problem()
    postfixes = []
    real = training.progress

    def spy(*args, **kwargs):
        bar = real(*args, **kwargs)
        original = bar.set_postfix
        bar.set_postfix = lambda *a, **k: (postfixes.append(k), original(*a, **k))[1]
        return bar

    monkeypatch.setattr(training, "progress", spy)
    train(x, index, y, 0, epochs=1, verbose=True)
    assert postfixes and {"loss", "P", "R"} <= set(postfixes[0])
    assert re.fullmatch(r"\d+\.\d{4}", postfixes[0]["loss"])
    postfixes.clear()
    train(x, index, y, 0, epochs=1, verbose=False)
    assert postfixes == []  # nothing computed for a hidden bar


def test_pivot_similarity_model_and_bad_input_are_named_before_training():
    x, index, y = small_problem()
    model, history = train(x, index, y, 0, epochs=1, pivot_similarity=True)
    assert model.in_channels == x.shape[1] + 1 and math.isfinite(history[0].loss)
    narrow = LinkageGCN(x.shape[1], hidden_channels=(8,))
    kwargs = dict(sampler=TopKSampler(6), k2=3, active_connection=3, verbose=False)
    with pytest.raises(ValueError, match=r"expects 64 input features .* will have 65"):
        train_linkage_gcn(narrow, x, index, y, pivot_similarity=True, **kwargs)
    with pytest.raises(ValueError, match="non-integer floats"):
        train_linkage_gcn(narrow, x, index, y + 0.5, **kwargs)
    with pytest.raises(ValueError, match=f"labels has {x.shape[0] - 1} entries"):
        train_linkage_gcn(narrow, x, index, y[:-1], **kwargs)
    with pytest.raises(ValueError, match="outside"):
        train_linkage_gcn(narrow, x, index + x.shape[0], y, **kwargs)
    with pytest.raises(ValueError, match="lr_decay"):
        train_linkage_gcn(narrow, x, index, y, lr_decay=2.0, **kwargs)
    with pytest.raises(TypeError, match="sampler must be a Hop1Sampler"):
        train_linkage_gcn(narrow, x, index, y, **{**kwargs, "sampler": "topk"})
    with pytest.raises(ValueError, match=r"expects 65 input features .* will have 64"):
        predict_links(model, x, index, k1=6, k2=3, active_connection=3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_on_gpu():
    x, index, y = (t.cuda() for t in small_problem())
    torch.manual_seed(0)
    model = LinkageGCN(x.shape[1], hidden_channels=(16,)).cuda()
    history = train_linkage_gcn(model, x, index, y, sampler=RIWSSampler(6), k2=3,
                                active_connection=3, epochs=1, verbose=False)  # fmt: skip
    assert math.isfinite(history[0].loss)
    _, _, scores = predict_links(model, x, index, k1=6, k2=3, active_connection=3)
    assert scores.is_cuda and bool(torch.isfinite(scores).all())
    with pytest.raises(ValueError, match="the model is on cuda:0 but x is on cpu"):
        predict_links(model, x.cpu(), index.cpu(), k1=6, k2=3, active_connection=3)


def test_predict_links_of_chosen_pivots_equal_the_full_run():
    torch.manual_seed(0)
    x = torch.randn(40, 8)
    index, _ = knn(x, 6)
    model = LinkageGCN(8, hidden_channels=(16,)).eval()
    src, dst, s = predict_links(model, x, index, k1=4, k2=2, active_connection=2, batch_size=7)
    pivots = torch.tensor([5, 0, 33])
    ps, pd, pscore = predict_links(
        model, x, index, k1=4, k2=2, active_connection=2, batch_size=2, pivots=pivots
    )
    rows = torch.cat([torch.arange(4 * p, 4 * p + 4) for p in pivots.tolist()])
    assert torch.equal(ps, src[rows]) and torch.equal(pd, dst[rows])
    torch.testing.assert_close(pscore, s[rows])
    with pytest.raises(ValueError, match="pivots"):
        predict_links(model, x, index, k1=4, k2=2, active_connection=2, pivots=[40])


def plain_scores(model, x, index, k1, k2, u, pivots, pivot_similarity=False):
    """predict_links written with the plain forward on build_ips batches."""
    from linkage_gcn.ips import build_ips

    batch = build_ips(x, index, pivots, index[pivots, :k1], k2=k2, active_connection=u,
                      pivot_similarity=pivot_similarity)  # fmt: skip
    with torch.no_grad():
        return torch.softmax(model(batch.x, batch.edge_index, batch.hop1_index), 1)[:, 1]


@pytest.mark.parametrize("pivot_similarity", [False, True])
@pytest.mark.parametrize("all_pivots", [True, False])  # all: one projection table for all nodes
def test_fast_scoring_path_gives_the_plain_forward_scores(pivot_similarity, all_pivots):
    x, index, y = small_problem()
    model, _ = train(x, index, y, 0, epochs=1, pivot_similarity=pivot_similarity)
    model.eval()
    pivots = torch.arange(x.shape[0]) if all_pivots else torch.tensor([3, 1, 40, 41])
    want = plain_scores(model, x, index, 6, 3, 3, pivots, pivot_similarity)
    for batch_size in (None, 1, 7, 1000):
        _, _, got = predict_links(model, x, index, k1=6, k2=3, active_connection=3,
                                  batch_size=batch_size, pivot_similarity=pivot_similarity,
                                  pivots=None if all_pivots else pivots)  # fmt: skip
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_other_models_take_the_plain_path_and_precision_is_checked():
    x, index, y = small_problem()
    model, _ = train(x, index, y, 0, epochs=1)
    model.eval()

    class Doubled(LinkageGCN):  # not a plain LinkageGCN: scored through its own forward
        def forward(self, x, edge_index, hop1_index):
            return 2 * super().forward(x, edge_index, hop1_index)

    other = Doubled(x.shape[1], hidden_channels=(32, 32))
    other.load_state_dict(model.state_dict())
    other.eval()
    pivots = torch.arange(x.shape[0])
    with torch.no_grad():
        want = plain_scores(other, x, index, 6, 3, 3, pivots)
    got = predict_links(other, x, index, k1=6, k2=3, active_connection=3)[2]
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    approx = predict_links(other, x, index, k1=6, k2=3, active_connection=3, precision="bf16")[2]
    assert (approx - want).abs().max() < 5e-2
    approx = predict_links(model, x, index, k1=6, k2=3, active_connection=3, precision="bf16")[2]
    assert (approx - plain_scores(model, x, index, 6, 3, 3, pivots)).abs().max() < 5e-2
    with pytest.raises(ValueError, match="precision"):
        predict_links(model, x, index, k1=6, k2=3, active_connection=3, precision="half")


def test_default_inference_batch_size_bounds_the_nodes_per_batch():
    from linkage_gcn.training import default_inference_batch_size

    assert default_inference_batch_size(20, 5) == 4096 // 121
    assert default_inference_batch_size(200, 10) == 1  # never 0
    assert default_inference_batch_size(20, 5, torch.device("cuda")) == (1 << 18) // 121
    # a narrower model's activations take fewer bytes per node: more nodes, on the CPU only
    assert default_inference_batch_size(20, 5, width=128) == 4 * 4096 // 121
    assert default_inference_batch_size(20, 5, width=1024) == 4096 // 121
    assert default_inference_batch_size(20, 5, "cuda", width=128) == (1 << 18) // 121
    with pytest.raises(ValueError, match="k1"):
        default_inference_batch_size(0, 5)
    with pytest.raises(ValueError, match="width"):
        default_inference_batch_size(20, 5, width=0)


def test_predict_links_batches_a_narrow_model_by_its_width(monkeypatch):
    from linkage_gcn import training
    from linkage_gcn.knn import knn

    seen = []
    real = training.build_ips_graph
    monkeypatch.setattr(training, "build_ips_graph",
                        lambda index, pivots, *a, **kw: seen.append(len(pivots)) or real(
                            index, pivots, *a, **kw))  # fmt: skip
    x = torch.randn(400, 8)
    index, _ = knn(x, 8)
    model = LinkageGCN(8, hidden_channels=(256, 64))
    training.predict_links(model, x, index, k1=6, k2=5, active_connection=2, verbose=False)
    assert seen == [2 * 4096 // 37, 400 - 2 * 4096 // 37]  # twice the 512-wide batch


def test_csr_training_step_equals_the_edge_list_one():
    # a plain LinkageGCN trains with a CSR adj_t; a subclass (its forward overridden) with the
    # edge list of build_ips: with the same seed both runs give the same losses and weights
    x, index, y = small_problem()

    class ViaEdgeList(LinkageGCN):
        def forward(self, x, edge_index, hop1_index):
            assert edge_index.layout == torch.strided and edge_index.shape[0] == 2
            return super().forward(x, edge_index, hop1_index)

    runs = []
    for cls in (LinkageGCN, ViaEdgeList):
        torch.manual_seed(0)
        model = cls(x.shape[1] + 1, hidden_channels=(32, 32))
        history = train_linkage_gcn(
            model, x, index, y, sampler=RIWSSampler(6, 2.0), k2=3, active_connection=3,
            epochs=2, batch_size=8, loss="cb-graph", pivot_similarity=True,
            generator=torch.Generator().manual_seed(0), verbose=False,
        )  # fmt: skip
        runs.append((model, history))
    (m1, h1), (m2, h2) = runs
    np.testing.assert_allclose([h.loss for h in h1], [h.loss for h in h2], rtol=1e-4)
    for (name, a), b in zip(m1.state_dict().items(), m2.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4, msg=name)


# ------------------------------------------------------------------ resume


class _Stop(Exception):
    pass


def _stop_after(epochs_run):
    seen = []

    def callback(stats):
        seen.append(stats.epoch)
        if len(seen) == epochs_run:
            raise _Stop

    return callback


def test_an_interrupted_training_resumes_to_the_uninterrupted_result(tmp_path):
    x, index, y = small_problem()
    whole, whole_history = train(x, index, y, 0, epochs=3, lr=0.05)
    path = tmp_path / "run.resume"
    with pytest.raises(_Stop):
        train(x, index, y, 0, epochs=3, lr=0.05, resume=path, callback=_stop_after(1))
    assert path.is_file()  # written after the first finished epoch
    seen = []
    resumed, history = train(x, index, y, 0, epochs=3, lr=0.05, resume=path,
                             callback=lambda s: seen.append(s.epoch))  # fmt: skip
    assert seen == [1, 2]  # only the epochs still to run
    assert [h.epoch for h in history] == [0, 1, 2]
    assert [h.lr for h in history] == pytest.approx([h.lr for h in whole_history])
    assert history[2].loss == pytest.approx(whole_history[2].loss, rel=1e-5)
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert not path.exists()  # removed once the training completed


def test_a_resume_file_of_other_settings_is_refused_and_kept(tmp_path):
    x, index, y = small_problem()
    path = tmp_path / "run.resume"
    with pytest.raises(_Stop):
        train(x, index, y, 0, epochs=3, lr=0.05, resume=path, callback=_stop_after(1))
    before = path.read_bytes()
    with pytest.raises(ValueError, match=r"another training: lr is 0.05 there, 0.01 here"):
        train(x, index, y, 0, epochs=3, lr=0.01, resume=path)
    n = x.shape[0]
    with pytest.raises(ValueError, match=rf"n_samples is {n} there, {n - 1} here"):
        fewer = torch.from_numpy(knn(x[:-1].numpy(), 12)[0])
        train(x[:-1], fewer, y[:-1], 0, epochs=3, lr=0.05, resume=path)
    assert path.read_bytes() == before  # never overwritten


@pytest.mark.parametrize(
    "content, words",
    [(b"not a torch file", "cannot be read"), (None, "is not a resume file of train_linkage_gcn")],
)
def test_a_file_that_is_not_a_resume_file_is_refused_untouched(tmp_path, content, words):
    x, index, y = small_problem()
    path = tmp_path / "run.resume"
    if content is None:
        torch.save({"weights": torch.zeros(2)}, path)
        content = path.read_bytes()
    else:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=re.escape(words)) as info:
        train(x, index, y, 0, epochs=1, resume=path)
    assert "will not overwrite it" in str(info.value)
    assert path.read_bytes() == content


def test_a_resume_path_in_a_missing_directory_is_refused_before_training(tmp_path):
    x, index, y = small_problem()
    calls = []
    with pytest.raises(ValueError, match=r"resume=.*does not exist"):
        train(x, index, y, 0, epochs=1, resume=tmp_path / "no" / "run.resume",
              callback=calls.append)  # fmt: skip
    assert calls == []
