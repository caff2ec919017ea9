import numpy as np
import pytest
import torch

from linkage_gcn import LinkageClusterer
from linkage_gcn.datasets import make_identities
from linkage_gcn.ips import build_ips_graph
from linkage_gcn.knn import knn
from linkage_gcn.nn import LinkageGCN
from linkage_gcn.samplers import TopKSampler
from linkage_gcn.structure import (
    N_SCORE_FEATURES,
    N_STRUCTURE_FEATURES,
    SCORE_FEATURE_NAMES,
    STRUCTURE_FEATURE_NAMES,
    StructureContext,
    similarity_scale,
)
from linkage_gcn.training import predict_links, train_linkage_gcn


def _data(n_ids=30, seed=0, dim=None):
    X, y = make_identities(n_ids, random_state=seed)
    if dim is not None:
        X = X[:, :dim]
    return torch.from_numpy(X), torch.from_numpy(y)


def _reference_features(x, index, k, node, pivot, loc, scale):
    """The features of one pair, written out from their definitions, in plain numpy."""
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    n = u.shape[0]

    def z(a, b):
        return (float(u[a] @ u[b]) - loc) / scale

    p, v = int(pivot), int(node)
    row_p, row_v = list(index[p, :k]), list(index[v, :k])
    zpv = z(p, v)
    zp1, zv1, zpk, zvk = z(p, row_p[0]), z(v, row_v[0]), z(p, row_p[-1]), z(v, row_v[-1])
    rank_v = (k - row_p.index(v)) / k if v in row_p else 0.0
    rank_p = (k - row_v.index(p)) / k if p in row_v else 0.0
    a, b = set(row_p) | {p}, set(row_v) | {v}
    jac = len(a & b) / len(a | b)
    size = np.sqrt(2 * np.log(n))
    zs = [zpv, zpv - zp1, zpv - zv1, zpv - zpk, zpv - zvk, zpv - size]
    dens = [zp1, zv1, zpk, zvk]
    return np.array(
        [t / 5 for t in zs] + [rank_v, rank_p, jac] + [t / 5 for t in dens] + [float(p == v)]
    )


def _family(n_people, per_person, dim=64, spread=0.6, seed=0):
    """A family-shaped collection: a few people, many photos each, no strangers."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(n_people, dim, generator=g)
    centres = centres / centres.norm(dim=1, keepdim=True)
    y = torch.arange(n_people).repeat_interleave(per_person)
    noise = torch.randn(y.shape[0], dim, generator=g) * spread / dim**0.5
    return centres.index_select(0, y) + noise, y


def _stranger_pairs(x, y):
    """Cosines of every pair of different people (the truth the fit estimates)."""
    u = x / x.norm(dim=1, keepdim=True)
    i, j = torch.triu_indices(x.shape[0], x.shape[0], offset=1)
    s = (u[i] * u[j]).sum(1)
    return s[y[i] != y[j]].double()


def test_similarity_scale_matches_a_two_component_mixture_fitted_by_scikit_learn():
    from sklearn.mixture import GaussianMixture

    x, _ = _family(6, 40)
    u = x / x.norm(dim=1, keepdim=True)
    i, j = torch.triu_indices(x.shape[0], x.shape[0], offset=1)
    s = (u[i] * u[j]).sum(1).double().numpy()
    gm = GaussianMixture(2, random_state=0, tol=1e-8, max_iter=500).fit(s[:, None])
    low = int(np.argmin(gm.means_[:, 0]))
    loc, scale = similarity_scale(x)  # 240 faces: all 28,680 pairs
    assert abs(loc - gm.means_[low, 0]) < 0.01 * np.sqrt(gm.covariances_[low, 0, 0])
    assert abs(scale / np.sqrt(gm.covariances_[low, 0, 0]) - 1) < 0.01


@pytest.mark.parametrize("n_people", [2, 4, 12])
def test_similarity_scale_finds_the_strangers_when_a_few_people_own_every_photo(n_people):
    # two people: 50 % of the random pairs are one person; a median and MAD land among them
    x, y = _family(n_people, 600 // n_people)
    strangers = _stranger_pairs(x, y)
    loc, scale = similarity_scale(x)
    sd = float(strangers.std())
    assert abs(loc - float(strangers.mean())) < 0.1 * sd
    assert abs(scale / sd - 1) < 0.1
    # a person's photos stand as far above the strangers as in a long-tailed collection
    u = x / x.norm(dim=1, keepdim=True)
    assert float((u[0] @ u[1] - loc) / scale) > 3


def test_similarity_scale_of_random_directions_is_their_mean_and_sd():
    # no same-person pairs: the mixture's upper part is not apart, so all pairs are read
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 32, generator=g)
    u = x / x.norm(dim=1, keepdim=True)
    s = (u @ u.T)[np.triu_indices(300, 1)].double()
    loc, scale = similarity_scale(x)
    assert abs(loc - float(s.mean())) < 1e-6 and abs(scale - float(s.std())) < 1e-6
    # too few pairs to fit a mixture on: their mean and sd too
    tiny = torch.randn(4, 8, generator=g)
    ut = tiny / tiny.norm(dim=1, keepdim=True)
    st = (ut @ ut.T)[np.triu_indices(4, 1)].double()
    assert similarity_scale(tiny) == pytest.approx((float(st.mean()), float(st.std())))


def test_similarity_scale_is_seeded_and_rejects_bad_input():
    x, _ = _data()
    assert similarity_scale(x, n_pairs=1000) == similarity_scale(x, n_pairs=1000)
    with pytest.raises(ValueError, match="NaN"):
        similarity_scale(torch.full((5, 3), float("nan")))


def test_pair_features_match_their_definitions():
    x, _ = _data(12, dim=16)
    index, _ = knn(x, 8)
    ctx = StructureContext.build(x, index, k=6)
    g = build_ips_graph(index, torch.arange(5), index[:5, :6], k2=3, active_connection=3)
    pivots = torch.arange(5).index_select(0, g.batch)
    got = ctx.pair_features(g.n_id, pivots).numpy()
    assert (
        got.shape
        == (g.num_nodes, N_STRUCTURE_FEATURES)
        == (g.num_nodes, len(STRUCTURE_FEATURE_NAMES))
    )
    loc, scale = similarity_scale(x)
    for i in range(g.num_nodes):
        want = _reference_features(x.numpy(), index.numpy(), 6, g.n_id[i], pivots[i], loc, scale)
        np.testing.assert_allclose(got[i], want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("given", [False, True])
def test_link_features_are_the_pair_features_of_the_knn_links(given):
    x, _ = _data(12, dim=16)
    index, sim = knn(x, 8)
    ctx = StructureContext.build(x, index, k=6, similarity=sim if given else None)
    torch.testing.assert_close(ctx.knn_similarity, sim[:, :6], rtol=0, atol=1e-5)
    rows = torch.tensor([0, 7, 3])
    got = ctx.link_features(rows).numpy()
    assert got.shape == (3 * 6, N_STRUCTURE_FEATURES)
    loc, scale = similarity_scale(x)
    for i, p in enumerate(rows.tolist()):
        for j in range(6):
            want = _reference_features(x.numpy(), index.numpy(), 6, index[p, j], p, loc, scale)
            np.testing.assert_allclose(got[i * 6 + j], want, rtol=1e-4, atol=1e-4)
    everything = ctx.link_features()
    pairs = ctx.pair_features(index[:, :6].reshape(-1), torch.arange(len(x)).repeat_interleave(6))
    torch.testing.assert_close(everything, pairs, rtol=1e-4, atol=1e-4)


def test_given_similarities_are_checked():
    x, _ = _data(10, dim=8)
    index, sim = knn(x, 4)
    with pytest.raises(ValueError, match="shape"):
        StructureContext.build(x, index, k=4, similarity=sim[:, :3])
    with pytest.raises(ValueError, match="NaN"):
        StructureContext.build(x, index, k=4, similarity=torch.full_like(sim, float("nan")))
    _, minus_distance = knn(x * 10, 4, metric="l2")
    with pytest.raises(ValueError, match="cosine"):
        StructureContext.build(x, index, k=4, similarity=minus_distance)


def _score_features_by_definition(index, scores):
    """Each link's score features from the kNN lists, one link at a time."""
    n, k = index.shape
    lists = [dict(zip(index[i].tolist(), scores[i].tolist())) | {i: 1.0} for i in range(n)]
    rows = []
    for p in range(n):
        for v in index[p].tolist():
            shared = set(lists[p]) & set(lists[v])
            rows.append([
                lists[p][v],
                lists[v][p] if p in index[v].tolist() else 0.0,
                sum(lists[p][r] * lists[v][r] for r in shared) / (k + 1),
                max(min(lists[p][r], lists[v][r]) for r in shared),
                float(scores[p].mean()),
                float(scores[v].mean()),
            ])  # fmt: skip
    return torch.tensor(rows)


def test_score_features_match_their_definitions():
    x = torch.randn(80, 12, generator=torch.Generator().manual_seed(4))
    index, _ = knn(x, 6)
    ctx = StructureContext.build(x, index, k=6)
    scores = torch.rand(80, 6, generator=torch.Generator().manual_seed(5))
    want = _score_features_by_definition(index, scores)
    assert len(SCORE_FEATURE_NAMES) == N_SCORE_FEATURES == want.shape[1]
    torch.testing.assert_close(ctx.score_features(scores), want)
    rows = torch.tensor([7, 0, 42])
    picked = want.view(80, 6, -1)[rows].reshape(-1, want.shape[1])
    torch.testing.assert_close(ctx.score_features(scores, rows), picked)


def test_score_features_refuse_scores_of_another_table():
    x = torch.randn(30, 8, generator=torch.Generator().manual_seed(6))
    index, _ = knn(x, 4)
    ctx = StructureContext.build(x, index, k=4)
    for bad in (torch.rand(30, 5), torch.rand(29, 4), torch.ones(30, 4, dtype=torch.long)):
        with pytest.raises(ValueError, match="scores must be a float tensor"):
            ctx.score_features(bad)


def test_features_do_not_depend_on_the_face_models_coordinates():
    x, _ = _data(20, dim=32)
    index, _ = knn(x, 10)
    node, pivot = torch.arange(60), torch.arange(60).flip(0)
    base = StructureContext.build(x, index, k=10).pair_features(node, pivot)
    q, _ = torch.linalg.qr(torch.randn(32, 32, generator=torch.Generator().manual_seed(1)))
    moved = [
        3.7 * x,  # the scale of the descriptors
        x @ q,  # a rotation of the space
        torch.cat([x, torch.zeros(x.shape[0], 100)], dim=1),  # another dimension
    ]
    for other in moved:
        got = StructureContext.build(other, index, k=10).pair_features(node, pivot)
        torch.testing.assert_close(got, base, rtol=1e-4, atol=1e-4)


def test_each_collection_is_standardised_on_its_own():
    xa, _ = _data(15, seed=0, dim=16)
    xb, _ = _data(15, seed=1, dim=16)
    xb = torch.nn.functional.normalize(xb, dim=1) * 0.3 + 1.0  # a space of other similarities
    ia, _ = knn(xa, 5)
    ib, _ = knn(xb, 5)
    n = xa.shape[0]
    both = StructureContext.build(
        torch.cat([xa, xb]),
        torch.cat([ia, ib + n]),
        k=5,
        collections=torch.cat(
            [torch.zeros(n, dtype=torch.long), torch.ones(xb.shape[0], dtype=torch.long)]
        ),
    )
    alone = StructureContext.build(xb, ib, k=5)
    ids = torch.arange(xb.shape[0])
    torch.testing.assert_close(
        both.pair_features(ids + n, ids.flip(0) + n)[:, :5],
        alone.pair_features(ids, ids.flip(0))[:, :5],
        rtol=1e-4,
        atol=1e-4,
    )
    assert both.n_collections == 2
    assert repr(both) == f"StructureContext(num_nodes={n + xb.shape[0]}, k=5, collections=2)"


def test_build_refuses_crossing_collections_and_tiny_ones():
    x, _ = _data(10, dim=8)
    index, _ = knn(x, 4)
    coll = torch.zeros(x.shape[0], dtype=torch.long)
    coll[: x.shape[0] // 2] = 1
    with pytest.raises(ValueError, match="different collections"):
        StructureContext.build(x, index, k=4, collections=coll)
    with pytest.raises(ValueError, match="collections must be an integer array"):
        StructureContext.build(x, index, k=4, collections=torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="knn_index"):
        StructureContext.build(x, index[:5], k=4)


def test_training_and_scoring_read_the_structure_features():
    x, y = _data(20, dim=16)
    index, _ = knn(x, 8)
    ctx = StructureContext.build(x, index, k=4)
    torch.manual_seed(0)
    model = LinkageGCN(N_STRUCTURE_FEATURES, hidden_channels=(16,))
    history = train_linkage_gcn(
        model,
        x,
        index,
        y,
        sampler=TopKSampler(4),
        k2=2,
        active_connection=2,
        epochs=2,
        seed=0,
        verbose=False,
        structure=ctx,
    )
    assert history[-1].recall > 0.5
    src, dst, scores = predict_links(
        model, x, index, k1=4, k2=2, active_connection=2, structure=ctx, verbose=False
    )
    same = (y[src] == y[dst]).float()
    assert float((scores * same).sum() / same.sum()) > float(
        (scores * (1 - same)).sum() / (1 - same).sum()
    )
    # the scores of a plain forward on the same subgraph
    g = build_ips_graph(index, torch.tensor([0]), index[:1, :4], k2=2, active_connection=2)
    feats = g.features(x, torch.tensor([0]), structure=ctx)
    with torch.no_grad():
        logits = model.eval()(feats, g.edge_index(), g.hop1_index)
    torch.testing.assert_close(torch.softmax(logits, 1)[:, 1], scores[:4], rtol=1e-5, atol=1e-6)


def test_training_refuses_a_model_of_the_wrong_width_or_both_feature_kinds():
    x, y = _data(10, dim=16)
    index, _ = knn(x, 6)
    ctx = StructureContext.build(x, index, k=4)
    common = dict(sampler=TopKSampler(4), k2=2, active_connection=2, epochs=1, verbose=False)
    with pytest.raises(ValueError, match=f"in_channels={N_STRUCTURE_FEATURES}"):
        train_linkage_gcn(
            LinkageGCN(16, hidden_channels=(8,)), x, index, y, structure=ctx, **common
        )
    with pytest.raises(ValueError, match="one or the other"):
        train_linkage_gcn(
            LinkageGCN(N_STRUCTURE_FEATURES, hidden_channels=(8,)),
            x,
            index,
            y,
            structure=ctx,
            pivot_similarity=True,
            **common,
        )
    with pytest.raises(ValueError, match="build it from this x"):
        train_linkage_gcn(
            LinkageGCN(N_STRUCTURE_FEATURES, hidden_channels=(8,)),
            x[:-1],
            index[:-1].clamp_max(x.shape[0] - 2),
            y[:-1],
            structure=ctx,
            **common,
        )
    with pytest.raises(ValueError, match="int8"):
        predict_links(
            LinkageGCN(N_STRUCTURE_FEATURES, hidden_channels=(8,)),
            x,
            index,
            k1=4,
            k2=2,
            active_connection=2,
            structure=ctx,
            precision="int8",
        )


TINY = dict(
    k_at_hop=(6, 3),
    active_connection=3,
    hidden_channels=(16, 16),
    epochs=1,
    batch_size=8,
    verbose=False,
    random_state=0,
)


def test_estimator_with_structure_features_takes_any_dimension():
    X, y = make_identities(25, random_state=0)
    est = LinkageClusterer(features="structure", **TINY).fit(X, y)
    assert est.model_.in_channels == N_STRUCTURE_FEATURES
    Xt, _ = make_identities(10, random_state=3)
    labels = est.predict(Xt)
    # a zero-padded copy has the same cosines: the same clusters, from a wider input
    wide = np.hstack([Xt, np.zeros((Xt.shape[0], 97), dtype=Xt.dtype)])
    np.testing.assert_array_equal(est.predict(wide), labels)
    np.testing.assert_array_equal(est.predict(5.0 * Xt), labels)
    # bf16 runs on the CPU too (its sparse products in fp32), close to fp32's scores
    _, exact = est.predict_edges(Xt)
    _, approx = est.set_params(precision="bf16").predict_edges(Xt)
    assert np.abs(approx - exact).max() < 2e-2


def test_estimator_structure_features_survive_save_and_load(tmp_path):
    X, y = make_identities(20, random_state=0)
    est = LinkageClusterer(features="structure", **TINY).fit(X, y)
    back = LinkageClusterer.load(est.save(tmp_path / "m.pt"))
    assert back.features == "structure"
    Xt, _ = make_identities(8, random_state=3)
    np.testing.assert_array_equal(back.predict(Xt[:, :20]), est.predict(Xt[:, :20]))


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(metric="l2"), "metric='cosine'"),
        (dict(preprocessing="center-l2"), "center-l2"),
        (dict(precision="int8"), "int8"),
        (dict(features="coords"), "features"),
    ],
)
def test_estimator_refuses_settings_structure_features_cannot_use(params, match):
    X, y = make_identities(10, random_state=0)
    with pytest.raises(ValueError, match=match):
        LinkageClusterer(**{"features": "structure", **TINY, **params}).fit(X, y)


def test_fit_on_several_collections_searches_each_within_itself():
    Xa, ya = make_identities(15, random_state=0)
    Xb, yb = make_identities(15, random_state=1)
    X = np.vstack([Xa, 2.0 * Xb])
    y = np.concatenate([ya, yb + 1000])
    coll = np.array(["a"] * len(Xa) + ["b"] * len(Xb))
    est = LinkageClusterer(features="structure", **TINY)
    index = est._knn(
        torch.from_numpy(X), 8, collections=np.r_[np.zeros(len(Xa), int), np.ones(len(Xb), int)]
    )
    side = np.r_[np.zeros(len(Xa)), np.ones(len(Xb))]
    assert (side[index.numpy()] == side[:, None]).all()
    est.fit(X, y, collections=coll)
    assert est.labels_.shape == (len(X),)
    # no cluster spans the two collections
    for c in np.unique(est.labels_):
        assert len(np.unique(side[est.labels_ == c])) == 1
    with pytest.raises(ValueError, match="at least two rows"):
        est.fit(X, y, collections=np.r_[np.zeros(len(X) - 1), [1]])
    with pytest.raises(ValueError, match="collections"):
        est.fit(X, y, collections=np.zeros(3))


def test_incremental_clusterer_takes_a_structure_model():
    from linkage_gcn import IncrementalClusterer

    X, y = make_identities(15, random_state=0)
    est = LinkageClusterer(features="structure", **TINY).fit(X, y)
    library = IncrementalClusterer(est)
    library.add(X[:, :20])  # any width: the collection's own
    assert library.n_features_in_ == 20 and len(library) == len(X)
