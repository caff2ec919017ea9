"""IncrementalClusterer: one rule per test, tiny model, synthetic identities."""

from __future__ import annotations

import copy
import json
import warnings

import numpy as np
import pytest
import torch

from linkage_gcn import LinkageClusterer
from linkage_gcn.datasets import make_identities
from linkage_gcn.incremental import IncrementalClusterer, UpdateReport, model_fingerprint
from linkage_gcn.knn import knn
from linkage_gcn.merge import constrained_components, separate_groups, threshold_components
from linkage_gcn.metrics import bcubed_fscore
from linkage_gcn.model_selection import split_identities

TINY = dict(
    k_at_hop=(8, 3), active_connection=3, epochs=1, hidden_channels=(16,), merge="threshold"
)


@pytest.fixture(scope="module")
def data():
    X, y = make_identities(200, random_state=0)
    train, test = split_identities(y, random_state=0)
    est = LinkageClusterer(random_state=0, **TINY).fit(X[train], y[train])
    return est, X[test].astype(np.float32), y[test]


def same_partition(a, b):
    return bcubed_fscore(a, b)[2] == 1.0


def streamed(est, X, batch, **kwargs):
    inc = IncrementalClusterer(est, **kwargs)
    reports = [inc.add(X[s : s + batch]) for s in range(0, len(X), batch)]
    return inc, reports


# ------------------------------------------------------------------ additions


def test_one_addition_equals_batch_predict(data):
    est, X, _ = data
    inc = IncrementalClusterer(est)
    report = inc.add(X)
    assert same_partition(inc.labels_, est.predict(X))
    assert report.face_ids.tolist() == list(range(len(X)))
    assert np.array_equal(report.labels, inc.labels_)


def test_chinese_whispers_clusterer_keeps_its_merge(data):
    est, X, _ = data
    cw = copy.deepcopy(est).set_params(merge="chinese-whispers", merge_runs=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # its own merge: no warning
        inc = IncrementalClusterer(cw)
    inc.add(X)
    assert same_partition(inc.labels_, cw.predict(X))
    # names stay apart inside the Chinese-whispers merge too
    ids = inc.face_ids_
    inc.name(ids[:2], ["ann", "bob"])
    persons = inc.labels_[:2]
    assert persons[0] != persons[1]


def test_stream_keeps_the_exact_knn_table(data):
    est, X, _ = data
    inc, _ = streamed(est, X, 37)
    w = inc._w
    ref, _ = knn(X, w)
    table = inc._bufs["knn"][: len(inc), :w]
    assert np.array_equal(np.sort(table, 1), np.sort(np.asarray(ref), 1))


def test_stream_with_context_equals_batch_predict(data):
    est, X, _ = data
    inc, _ = streamed(est, X, 41, context=True)
    assert same_partition(inc.labels_, est.predict(X))


def test_stream_scores_only_new_faces_and_rows_they_enter(data):
    est, X, _ = data
    inc, reports = streamed(est, X, 50)
    later = reports[3:]
    assert all(50 <= r.rescored < len(inc) for r in later)
    assert all(r.region <= len(inc) for r in later)


@pytest.mark.parametrize("backend", ["faiss", "faiss-hnsw"])
def test_faiss_backends_stream(data, backend):
    pytest.importorskip("faiss")
    est, X, _ = data
    inc, _ = streamed(est, X, 60, backend=backend)
    ref, _ = streamed(est, X, 60, backend="torch")
    assert bcubed_fscore(ref.labels_, inc.labels_)[2] > 0.95


def test_ids_are_stable_across_additions(data):
    est, X, _ = data
    inc, _ = streamed(est, X[:200], 50)
    before = inc.labels_
    report = inc.add(X[200:230])
    after = inc.labels_[:200]
    changed = before != after
    assert changed.sum() == report.changed_faces
    # a face changes id only when its cluster merged (reported) or split
    for old, new in zip(before[changed], after[changed]):
        assert report.merged.get(int(old)) == int(new) or int(old) in report.split
    # every id still present names (mostly) the same faces
    assert set(np.unique(after)) - set(np.unique(before)) <= set(report.labels.tolist()) | {
        i for ids in report.split.values() for i in ids
    }


def test_face_ids_increase_and_are_never_reused(data):
    est, X, _ = data
    inc = IncrementalClusterer(est)
    first = inc.add(X[:30]).face_ids
    inc.remove(first[-5:])
    second = inc.add(X[30:40]).face_ids
    assert second.tolist() == list(range(30, 40))
    assert inc.face_ids_.tolist() == list(range(25)) + list(range(30, 40))


def bridge_fixture(est):
    """Two tight groups of 12 far apart (more than k1 = 8 each: no kNN link between them),
    then two faces between them, one nearer each group: a chain A - p - q - B."""
    rng = np.random.default_rng(0)
    d = est.n_features_in_
    a, b = np.zeros(d, np.float32), np.zeros(d, np.float32)
    a[0], b[1] = 1.0, 1.0
    group_a = a + 0.02 * rng.standard_normal((12, d)).astype(np.float32)
    group_b = b + 0.02 * rng.standard_normal((12, d)).astype(np.float32)
    bridge = np.stack([0.55 * a + 0.45 * b, 0.45 * a + 0.55 * b])
    return group_a, group_b, bridge


def test_bridging_faces_merge_two_clusters_and_it_is_reported(data):
    est, _, _ = data
    group_a, group_b, bridge = bridge_fixture(est)
    inc = IncrementalClusterer(est, threshold=0.0)  # every scored link kept: merges guaranteed
    inc.add(np.concatenate([group_a, group_b]))
    ids_a, ids_b = inc.labels_[:12], inc.labels_[12:]
    assert len(set(ids_a)) == 1 and len(set(ids_b)) == 1 and ids_a[0] != ids_b[0]
    report = inc.add(bridge)
    assert len(np.unique(inc.labels_)) == 1
    survivor = int(inc.labels_[0])
    assert survivor == min(ids_a[0], ids_b[0])  # same size: the older id survives
    loser = int(max(ids_a[0], ids_b[0]))
    assert report.merged == {loser: survivor}
    assert report.changed_faces == report.merged_faces == 12


def test_the_larger_cluster_keeps_its_id(data):
    est, _, _ = data
    group_a, group_b, bridge = bridge_fixture(est)
    inc = IncrementalClusterer(est, threshold=0.0)
    inc.add(np.concatenate([group_a[:9], group_b]))  # a: 9 faces (older id), b: 12
    id_b = int(inc.labels_[-1])
    report = inc.add(bridge)
    assert len(np.unique(inc.labels_)) == 1 and int(inc.labels_[0]) == id_b
    assert list(report.merged.values()) == [id_b]


# ------------------------------------------------------------------ names


def test_two_names_never_share_a_cluster(data):
    est, _, _ = data
    group_a, group_b, bridge = bridge_fixture(est)
    inc = IncrementalClusterer(est, threshold=0.0)
    inc.add(np.concatenate([group_a, group_b]))
    inc.name([0, 12], ["Ann", "Bob"])
    inc.add(bridge)
    labels, names = inc.labels_, inc.names_
    assert labels[0] != labels[12]
    for c in np.unique(labels):
        assert len({n for n in names[labels == c] if n is not None}) <= 1
    # the cannot-link is in the merge: re-cutting at any threshold keeps it
    for th in (0.0, 0.3, 0.9):
        inc.recut(th)
        assert inc.labels_[0] != inc.labels_[12]


def test_faces_of_one_group_never_share_a_cluster(data, tmp_path):
    est, _, _ = data
    group_a, group_b, bridge = bridge_fixture(est)
    inc = IncrementalClusterer(est, threshold=0.0)
    inc.add(group_a[:6])
    one = inc.labels_[0]
    # two faces of group A arrive in one photo (group 7): the person splits in two
    report = inc.add(group_a[6:8], groups=[7, 7])
    a, b = report.labels
    assert a != b and one in (a, b)
    for c in np.unique(inc.labels_):  # the split is the one the scores and the rule give
        members = np.flatnonzero(inc.labels_ == c)
        assert not {6, 7} <= set(members.tolist())
    expected = separate_groups(
        constrained_components(*inc.pair_scores(), len(inc), 0.0, None), *inc.pair_scores(),
        groups=np.r_[np.full(6, -1), 7, 7],
    )  # fmt: skip
    assert same_partition(inc.labels_, expected)
    # it holds in later updates, after a save and load, and at any cut
    inc.add(group_a[8:])
    back = IncrementalClusterer.load(inc.save(tmp_path / "s.npz"), est)
    for lib in (inc, back):
        lib.add(bridge)
        for th in (0.0, 0.5):
            lib.recut(th)
            assert lib.labels_of([6])[0] != lib.labels_of([7])[0]
    # a name outranks a group: two faces of one photo given one name are one person
    inc.name([6, 7], "Ann")
    assert inc.labels_of([6])[0] == inc.labels_of([7])[0]
    with pytest.raises(ValueError, match="groups"):
        inc.add(group_b[:2], groups=[1])
    assert len(inc) == 14


def test_a_state_without_groups_loads_with_none(data, tmp_path):
    est, X, _ = data
    inc, _ = streamed(est, X[:60], 30)
    path = inc.save(tmp_path / "s.npz")
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files if k != "groups"}
    np.savez(tmp_path / "old.npz", **arrays)
    back = IncrementalClusterer.load(tmp_path / "old.npz", est)
    assert np.array_equal(back.labels_, inc.labels_)
    assert np.array_equal(back.add(X[60:80]).labels, inc.add(X[60:80]).labels)


def test_unnamed_faces_join_a_named_person(data):
    est, _, _ = data
    group_a, _, _ = bridge_fixture(est)
    inc = IncrementalClusterer(est, threshold=0.0)
    inc.add(group_a[:6])
    inc.name(0, "Ann")
    report = inc.add(group_a[6:])
    person = inc.persons()["Ann"]
    assert set(report.labels.tolist()) == {person}


def test_named_face_keeps_its_person(data):
    est, _, _ = data
    group_a, group_b, bridge = bridge_fixture(est)
    inc = IncrementalClusterer(est, threshold=0.0)
    inc.add(group_a)
    inc.name([0, 1], "Ann")
    ann = inc.persons()["Ann"]
    inc.add(np.concatenate([group_b, bridge]))
    inc.name(12, "Bob")
    inc.recut(0.99)  # nearly every link cut: named faces of one name stay one person
    assert inc.labels_of([0, 1]).tolist() == [ann, ann]
    assert inc.persons()["Ann"] == ann


def test_rename_onto_another_name_merges_the_persons(data):
    est, _, _ = data
    group_a, group_b, _ = bridge_fixture(est)
    inc = IncrementalClusterer(est)
    inc.add(np.concatenate([group_a, group_b]))
    inc.name([0, 12], ["Ann", "Annie"])
    assert inc.labels_[0] != inc.labels_[12]
    inc.rename("Annie", "Ann")
    assert inc.labels_[0] == inc.labels_[12]
    assert set(inc.persons()) == {"Ann"}
    inc.rename("Ann", "Anna")  # plain rename: nothing moves
    assert set(inc.persons()) == {"Anna"}


def test_unnaming_frees_the_constraint(data):
    est, _, _ = data
    group_a, group_b, bridge = bridge_fixture(est)
    inc = IncrementalClusterer(est, threshold=0.0)
    inc.add(np.concatenate([group_a, group_b, bridge]))
    inc.name([0, 12], ["Ann", "Bob"])
    assert inc.labels_[0] != inc.labels_[12]
    inc.name(12, None)
    assert inc.labels_[0] == inc.labels_[12]


# ------------------------------------------------------------------ removal


def test_removal_repairs_rows_and_splits_at_the_bridge(data):
    est, _, _ = data
    group_a, group_b, bridge = bridge_fixture(est)
    inc = IncrementalClusterer(est, threshold=0.0)
    inc.add(np.concatenate([group_a, group_b, bridge]))
    assert len(np.unique(inc.labels_)) == 1
    report = inc.remove([24, 25])  # the bridge photos are deleted
    assert len(inc) == 24 and len(np.unique(inc.labels_)) == 2
    assert report.split and report.changed_faces == 12
    # the kNN table is what a fresh search gives
    ref, _ = knn(np.concatenate([group_a, group_b]), inc._w)
    table = inc._bufs["knn"][:24, : inc._w]
    assert np.array_equal(np.sort(table, 1), np.sort(np.asarray(ref), 1))


def test_removal_of_a_whole_cluster_is_reported(data):
    est, _, _ = data
    group_a, group_b, _ = bridge_fixture(est)
    inc = IncrementalClusterer(est, threshold=0.0)  # each group one cluster
    inc.add(np.concatenate([group_a, group_b]))
    id_b = int(inc.labels_[-1])
    report = inc.remove(np.arange(12, 24))
    assert report.removed == [id_b] and id_b not in inc.labels_


# ------------------------------------------------------------------ re-cut


@pytest.mark.parametrize("threshold", [0.0, 0.4, 0.6, 0.95])
def test_recut_equals_merging_the_stored_scores(data, threshold):
    est, X, _ = data
    inc, _ = streamed(est, X, 60)
    edge_index, scores = inc.pair_scores()
    inc.recut(threshold)
    assert same_partition(inc.labels_, threshold_components(edge_index, scores, len(X), threshold))
    inc.name([0, 5], ["A", "B"])
    names = np.where(np.isin(inc.face_ids_, [0, 5]), np.searchsorted([0, 5], inc.face_ids_), -1)
    want = constrained_components(edge_index, scores, len(X), threshold, names)
    assert same_partition(inc.labels_, want)


def test_recut_back_and_forth_keeps_ids(data):
    est, X, _ = data
    inc, _ = streamed(est, X, 60)
    start = inc.labels_
    inc.recut(0.99)
    inc.recut(est.threshold_)
    assert np.array_equal(inc.labels_, start)


# ------------------------------------------------------------------ persistence


SETTINGS = [
    {},
    {"context": True, "search_k": 150, "chunk_size": 7, "threshold": 0.4},
    {"merge": "chinese-whispers", "threshold": 0.3},
    pytest.param({"backend": "faiss-hnsw", "search_k": 120}, id="faiss-hnsw"),
]


@pytest.mark.parametrize("settings", SETTINGS)
def test_save_load_round_trip(data, tmp_path, settings):
    if settings.get("backend", "").startswith("faiss"):
        pytest.importorskip("faiss")
    est, X, _ = data
    inc = IncrementalClusterer(est, **settings)
    for s in range(0, 150, 50):
        inc.add(X[s : s + 50])
    inc.name([3, 4], ["Ann", "Bob"])
    path = inc.save(tmp_path / "state.npz")
    back = IncrementalClusterer.load(path, est)
    for name in ("face_ids_", "labels_", "names_"):
        assert np.array_equal(getattr(back, name), getattr(inc, name))
    for name in ("threshold_", "backend", "search_k", "chunk_size", "context"):
        assert getattr(back, name) == getattr(inc, name), name
    assert back._merge_name() == inc._merge_name() and repr(back) == repr(inc)
    # both go on identically: the same pivots scored, the same clusters
    r1, r2 = inc.add(X[150:]), back.add(X[150:])
    assert r1.rescored == r2.rescored and r1.region == r2.region
    assert np.array_equal(r1.labels, r2.labels) and np.array_equal(back.labels_, inc.labels_)


def test_a_context_library_comes_back_with_context(data, tmp_path):
    # the bug this guards: context=True was not saved, so the loaded library scored fewer pivots
    est, X, _ = data
    inc, _ = streamed(est, X[:120], 40, context=True)
    back = IncrementalClusterer.load(inc.save(tmp_path / "s.npz"), est)
    plain = IncrementalClusterer.load(inc.save(tmp_path / "p.npz"), est, merge="threshold")
    plain.context = False
    assert back.context is True
    r_ctx, r_plain, r_orig = back.add(X[120:140]), plain.add(X[120:140]), inc.add(X[120:140])
    assert r_ctx.rescored == r_orig.rescored > r_plain.rescored


def test_load_overrides_backend_and_chunk_size(data, tmp_path):
    est, X, _ = data
    inc, _ = streamed(est, X[:100], 50, search_k=130)
    back = IncrementalClusterer.load(inc.save(tmp_path / "s.npz"), est, chunk_size=3)
    assert back.chunk_size == 3 and back.search_k == 130
    assert np.array_equal(back.add(X[100:120]).labels, inc.add(X[100:120]).labels)
    with pytest.raises(ValueError, match="unknown backend 'annoy'"):
        IncrementalClusterer.load(tmp_path / "s.npz", est, backend="annoy")


def test_a_merge_function_is_asked_for_again_at_load(data, tmp_path):
    est, X, _ = data

    def merge(edge_index, scores, num_nodes, threshold, names):
        return constrained_components(edge_index, scores, num_nodes, threshold, names)

    inc = IncrementalClusterer(est, merge=merge)
    inc.add(X[:60])
    with pytest.warns(UserWarning, match="is not stored in the state file"):
        path = inc.save(tmp_path / "s.npz")
    with pytest.raises(ValueError, match=r"s\.npz was saved with the merge function .*merge="):
        IncrementalClusterer.load(path, est)
    back = IncrementalClusterer.load(path, est, merge=merge)
    assert back.merge is merge
    assert np.array_equal(back.add(X[60:80]).labels, inc.add(X[60:80]).labels)


def _rewrite_state(path, target, change_header=None, drop=()):
    """A state file with its header edited by hand (as an older or a damaged writer)."""
    with np.load(path) as z:
        arrays = {name: z[name] for name in z.files}
    header = json.loads(arrays.pop("header").tobytes().decode())
    for key in drop:
        header.pop(key)
    header.update(change_header or {})
    encoded = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    np.savez(target, header=encoded, **arrays)
    return target


def test_a_version_1_state_still_loads(data, tmp_path):
    est, X, _ = data
    inc, _ = streamed(est, X[:100], 50, threshold=0.45)
    new = inc.save(tmp_path / "new.npz")
    # the header the 0.2.0 writer wrote: format version 1, no context/chunk_size/merge fields
    old = _rewrite_state(
        new, tmp_path / "old.npz", {"format_version": 1, "linkage_gcn_version": "0.2.0"},
        drop=("context", "chunk_size", "merge", "custom_merge"),
    )  # fmt: skip
    back = IncrementalClusterer.load(old, est)
    assert back.threshold_ == 0.45 and back.context is False and back.chunk_size == 512
    assert np.array_equal(back.labels_, inc.labels_)
    assert np.array_equal(back.add(X[100:120]).labels, inc.add(X[100:120]).labels)


@pytest.mark.parametrize(
    "change,match",
    [
        ({"threshold": 1.5}, r"holds a bad setting: threshold must be a number in \[0, 1\]"),
        ({"context": "yes"}, "holds a bad setting: context must be True or False"),
        ({"backend": "faiss-ivf"}, "holds a bad setting: unknown backend 'faiss-ivf'"),
        ({"search_k": 0}, "holds a bad setting: search_k must be an integer >= 1"),
        ({"merge": "louvain"}, "holds a bad setting: unknown merge 'louvain'"),
        ({"custom_merge": 3}, "holds a bad setting: custom_merge"),
    ],
)
def test_bad_saved_settings_name_the_file(saved, tmp_path, change, match):
    inc, path, _ = saved
    bad = _rewrite_state(path, tmp_path / "bad.npz", change)
    with pytest.raises(ValueError, match=r"bad\.npz " + match[len("holds"):].join(["holds", ""])):
        IncrementalClusterer.load(bad, inc.clusterer)


def test_a_version_2_state_without_its_settings_is_incomplete(saved, tmp_path):
    inc, path, _ = saved
    bad = _rewrite_state(path, tmp_path / "bad.npz", drop=("context",))
    with pytest.raises(ValueError, match=r"bad\.npz is an incomplete state file: .*context"):
        IncrementalClusterer.load(bad, inc.clusterer)


def test_save_refuses_to_overwrite(data, tmp_path):
    est, X, _ = data
    inc = IncrementalClusterer(est)
    inc.add(X[:20])
    path = inc.save(tmp_path / "state.npz")
    before = path.read_bytes()
    inc.add(X[20:30])
    with pytest.raises(FileExistsError, match="overwrite=True"):
        inc.save(path)
    assert path.read_bytes() == before
    inc.save(path, overwrite=True)
    assert len(IncrementalClusterer.load(path, est)) == 30


# ------------------------------------------------------------------ bad input


@pytest.fixture
def saved(data, tmp_path):
    est, X, _ = data
    inc = IncrementalClusterer(est)
    inc.add(X[:40])
    path = inc.save(tmp_path / "state.npz")
    return inc, path, path.read_bytes()


def test_unknown_face_ids_are_refused(saved):
    inc, path, before = saved
    labels = inc.labels_
    for call in (lambda: inc.name([1, 999], "Ann"), lambda: inc.remove([999]),
                 lambda: inc.labels_of([-1])):  # fmt: skip
        with pytest.raises(ValueError, match="unknown face id"):
            call()
    assert np.array_equal(inc.labels_, labels) and len(inc) == 40
    assert path.read_bytes() == before


def test_conflicting_names_on_one_face_are_refused(saved):
    inc, _, _ = saved
    with pytest.raises(ValueError, match="two different names"):
        inc.name([3, 3], ["Ann", "Bob"])
    with pytest.raises(ValueError, match="non-empty string"):
        inc.name([3], [""])
    with pytest.raises(ValueError, match="one name per face"):
        inc.name([3, 4], ["Ann"])
    assert inc.persons() == {}


def test_wrong_feature_width_is_refused(saved):
    inc, path, before = saved
    labels = inc.labels_
    with pytest.raises(ValueError, match="features"):
        inc.add(np.zeros((3, inc.n_features_in_ + 1), dtype=np.float32))
    with pytest.raises(ValueError):
        inc.add(np.full((2, inc.n_features_in_), np.nan, dtype=np.float32))
    assert len(inc) == 40 and np.array_equal(inc.labels_, labels)
    assert path.read_bytes() == before


def test_failed_addition_changes_nothing(saved, monkeypatch):
    inc, _, _ = saved
    est = inc.clusterer
    labels, table = inc.labels_, inc._bufs["knn"][:40].copy()

    def boom(*args, **kwargs):
        raise RuntimeError("scoring failed")

    monkeypatch.setattr("linkage_gcn.incremental.predict_links", boom)
    with pytest.raises(RuntimeError):
        inc.add(np.random.default_rng(0).standard_normal((5, est.n_features_in_)))
    assert len(inc) == 40 and np.array_equal(inc.labels_, labels)
    assert np.array_equal(inc._bufs["knn"][:40], table)


def test_state_of_another_model_is_refused(saved):
    inc, path, before = saved
    X, y = make_identities(60, random_state=1)
    other = LinkageClusterer(random_state=1, **TINY).fit(X, y)
    assert model_fingerprint(other) != inc.fingerprint_
    with pytest.raises(ValueError, match="another model"):
        IncrementalClusterer.load(path, other)
    wide = LinkageClusterer(random_state=0, **TINY).fit(np.hstack([X, X]), y)
    with pytest.raises(ValueError, match="-dimensional embeddings"):
        IncrementalClusterer.load(path, wide)
    assert path.read_bytes() == before


@pytest.mark.parametrize("damage", ["truncate", "flip", "text", "pickle", "foreign_npz"])
def test_corrupted_or_foreign_file_is_refused(saved, tmp_path, damage):
    inc, path, before = saved
    bad = tmp_path / "bad.npz"
    if damage == "truncate":
        bad.write_bytes(before[: len(before) // 2])
    elif damage == "flip":
        data = bytearray(before)
        data[len(data) // 3] ^= 0xFF
        bad.write_bytes(bytes(data))
    elif damage == "text":
        bad.write_text("not a state\n")
    elif damage == "pickle":
        np.savez(bad, header=np.array([{"format": "x"}], dtype=object))
    else:
        np.savez(bad, x=np.zeros(3))
    with pytest.raises(ValueError, match=str(bad.name)):
        IncrementalClusterer.load(bad, inc.clusterer)
    assert path.read_bytes() == before


def test_missing_state_file(data, tmp_path):
    est, _, _ = data
    with pytest.raises(FileNotFoundError):
        IncrementalClusterer.load(tmp_path / "nope.npz", est)


def test_construction_errors(data):
    est, _, _ = data
    with pytest.raises(ValueError, match="backend"):
        IncrementalClusterer(est, backend="annoy")
    with pytest.warns(UserWarning, match="calibrated for the other merge"):
        IncrementalClusterer(copy.deepcopy(est).set_params(merge="propagation"))
    with pytest.raises(Exception, match="not fitted"):
        IncrementalClusterer(LinkageClusterer())


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"threshold": 1.5}, r"threshold must be a number in \[0, 1\], got 1.5"),
        ({"threshold": -0.1}, r"threshold must be a number in \[0, 1\]"),
        ({"threshold": "auto"}, "threshold='auto' is calibrated on labelled training data"),
        ({"threshold": float("nan")}, "threshold must be a finite number"),
        ({"merge": 5}, "merge must be 'chinese-whispers' or 'threshold' .* or a function"),
        ({"merge": "louvain"}, "merge must be"),
        ({"backend": "faiss-ivf"}, "unknown backend 'faiss-ivf'; choose one of 'auto', 'torch'"),
        ({"backend": "torch_cluster"}, "unknown backend 'torch_cluster'"),
        ({"search_k": 0}, "search_k must be an integer >= 1"),
        ({"chunk_size": 0}, "chunk_size must be an integer >= 1"),
        ({"chunk_size": 2.5}, "chunk_size must be an integer"),
        ({"context": "yes"}, "context must be True or False"),
    ],
)
def test_bad_settings_are_refused_at_construction(data, kwargs, match):
    est, _, _ = data
    with pytest.raises(ValueError, match=match):
        IncrementalClusterer(est, **kwargs)


def test_backends_are_knns_growing_ones():
    from linkage_gcn.incremental import BACKENDS
    from linkage_gcn.knn import BACKENDS as KNN_BACKENDS

    assert BACKENDS == ("auto", "torch", "faiss", "faiss-hnsw")
    assert set(BACKENDS) <= set(KNN_BACKENDS)


def test_a_missing_faiss_is_refused_at_construction(data, monkeypatch):
    import importlib.util

    est, _, _ = data
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "faiss" else real(name, *a)
    )
    with pytest.raises(ValueError, match="backend 'faiss-hnsw' needs the package 'faiss'"):
        IncrementalClusterer(est, backend="faiss-hnsw")


def test_recut_refuses_what_the_estimator_refuses(saved):
    inc, _, _ = saved
    labels, cut = inc.labels_, inc.threshold_
    for bad, match in ((70, r"\[0, 1\], got 70"), ("auto", "threshold='auto'"),
                       (None, "finite number")):  # fmt: skip
        with pytest.raises(ValueError, match=match):
            inc.recut(bad)
    assert inc.threshold_ == cut and np.array_equal(inc.labels_, labels)


def test_a_merge_by_name_is_the_registry_merge_with_the_clusterers_runs(data):
    est, X, _ = data
    cw = copy.deepcopy(est).set_params(merge="chinese-whispers", merge_runs=3)
    by_name = IncrementalClusterer(copy.deepcopy(est).set_params(merge_runs=3),
                                   merge="chinese-whispers", threshold=cw.link_threshold())
    by_name.add(X)
    assert same_partition(by_name.labels_, cw.predict(X))


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda inc: inc.name([3], 5), "names must be a str, None, or a sequence"),
        (lambda inc: inc.name([3, 4], {"Ann", "Bob"}), "names must be a str, None, or a seq"),
        (lambda inc: inc.name([3], [5]), r"names\[0\] must be a non-empty string or None"),
        (lambda inc: inc.name(3, "  "), "names must be a non-empty string or None"),
        (lambda inc: inc.name([3, 4], [["Ann", "Bob"]]), "one name per face"),
        (lambda inc: inc.name("3", "Ann"), "face_ids must be integer face ids, got '3'"),
        (lambda inc: inc.name([1.5], "Ann"), "face_ids must be integer face ids"),
        (lambda inc: inc.rename(5, "Ann"), "old must be a non-empty string"),
        (lambda inc: inc.rename(["Ann"], "Bob"), "old must be a non-empty string"),
        (lambda inc: inc.rename("Ann", None), "new must be a non-empty string"),
        (lambda inc: inc.rename("Zed", "Bob"), "no face is named 'Zed'"),
        (lambda inc: inc.remove([True]), "face_ids must be integer face ids"),
        (lambda inc: inc.remove([1, 1]), "more than once"),
        (lambda inc: inc.labels_of(None), "face_ids must be integer face ids"),
        (lambda inc: inc.add(np.zeros((2, inc.n_features_in_))), "all-zero row"),
        (lambda inc: inc.add(None), "X is None"),
        (lambda inc: inc.save(None), "path must be a str or path-like"),
        (lambda inc: inc.save("s.npz", overwrite="no"), "overwrite must be True or False"),
    ],
)
def test_bad_input_to_every_method_is_refused_and_changes_nothing(saved, call, match):
    inc, path, before = saved
    inc.name(0, "Ann")
    labels, names, table = inc.labels_, inc.names_, inc._bufs["knn"][:40].copy()
    with pytest.raises((ValueError, TypeError), match=match):
        call(inc)
    assert len(inc) == 40 and np.array_equal(inc.labels_, labels)
    assert np.array_equal(inc.names_, names) and np.array_equal(inc._bufs["knn"][:40], table)
    assert path.read_bytes() == before


def test_names_accept_any_sequence(saved):
    inc, _, _ = saved
    inc.name((3, 4), np.array(["Ann", "Bob"]))
    inc.name(np.array([5]), ("Cy",))
    assert set(inc.persons()) == {"Ann", "Bob", "Cy"}


def test_a_refused_addition_leaves_a_working_index(saved):
    inc, _, _ = saved
    est, X = inc.clusterer, np.asarray(inc._bufs["x"][:40])
    with pytest.raises(ValueError, match="all-zero row"):
        inc.add(np.vstack([X[:2] + 0.01, np.zeros((1, inc.n_features_in_))]))
    assert len(inc._index) == 40
    extra = np.random.default_rng(1).standard_normal((30, est.n_features_in_)).astype(np.float32)
    inc.add(extra)
    ref, _ = knn(inc._bufs["x"][:70], inc._w)
    table = inc._bufs["knn"][:70, : inc._w]
    assert np.array_equal(np.sort(table, 1), np.sort(np.asarray(ref), 1))


def test_load_errors_name_the_path(data, tmp_path):
    est, _, _ = data
    with pytest.raises(FileNotFoundError, match="is a directory, not a state file"):
        IncrementalClusterer.load(tmp_path, est)
    with pytest.raises(ValueError, match="chunk_size must be an integer >= 1"):
        IncrementalClusterer.load(tmp_path / "x.npz", est, chunk_size=0)


# ------------------------------------------------------------------ small things


def test_tiny_collections_and_repr(data):
    est, X, _ = data
    inc = IncrementalClusterer(est)
    assert len(inc) == 0 and "n_faces=0" in repr(inc)
    inc.add(X[:1])
    assert inc.labels_.tolist() == [0]
    inc.add(X[1:3])
    inc.add(X[3:30])  # the kNN width grows: everything is rebuilt, ids kept
    assert len(inc) == 30 and isinstance(inc.add(X[30:32]), UpdateReport)
    inc.remove(inc.face_ids_[2:])
    assert len(inc) == 2


def test_swappable_merge_rule(data):
    est, X, _ = data
    calls = []

    def merge(edge_index, scores, num_nodes, threshold, names):
        calls.append(num_nodes)
        return threshold_components(edge_index, scores, num_nodes, threshold)

    inc = IncrementalClusterer(est, merge=merge)
    inc.add(X[:50])
    assert calls == [50]
    assert torch.get_num_threads() >= 1


def test_updates_run_with_the_clusterers_threads(data, monkeypatch):
    # as fit/predict: the clusterer's `threads` hold during every update, restored after
    import copy

    est, X, _ = data
    est = copy.deepcopy(est).set_params(threads=1)
    seen = []
    real = IncrementalClusterer._score

    def spy(self, pivots):
        seen.append(torch.get_num_threads())
        return real(self, pivots)

    monkeypatch.setattr(IncrementalClusterer, "_score", spy)
    before = torch.get_num_threads()
    with torch_threads(2):
        inc = IncrementalClusterer(est)
        inc.add(X[:60])
        inc.add(X[60:70])
        assert torch.get_num_threads() == 2
    assert seen and set(seen) == {1}
    assert torch.get_num_threads() == before


class torch_threads:
    def __init__(self, n):
        self.n = n

    def __enter__(self):
        self.old = torch.get_num_threads()
        torch.set_num_threads(self.n)

    def __exit__(self, *exc):
        torch.set_num_threads(self.old)


# ---------------------------------------------------------------- structure models (face-any)


def _pairs(edge_index, scores):
    e = np.sort(np.asarray(edge_index), axis=0)
    return dict(zip(map(tuple, e.T.tolist()), np.asarray(scores).tolist()))


def test_structure_model_grows_a_collection_of_any_width(tmp_path):
    est = LinkageClusterer.pretrained("face-any", threads=1, verbose=False)
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(40), 6)
    X = (rng.standard_normal((40, 512))[y] + 0.7 * rng.standard_normal((240, 512)))
    X = X.astype(np.float32)
    library = IncrementalClusterer(est)
    library.add(X)  # the first faces set the width: 512, not the 128 the model saw
    assert library.n_features_in_ == 512
    batch = _pairs(*est.set_params(cascade=False).predict_edges(X))  # the library scores all
    grown = _pairs(*library.pair_scores())
    assert batch.keys() == grown.keys()
    np.testing.assert_allclose([grown[k] for k in batch], list(batch.values()), atol=1e-5)
    np.testing.assert_array_equal(
        bcubed_fscore(library.labels_, est.predict(X)), (1.0, 1.0, 1.0)
    )
    # grown in three batches: each batch's pivots are scored against the collection as it is
    order = rng.permutation(240)
    parts = IncrementalClusterer(est)
    for rows in np.array_split(order, 3):
        parts.add(X[rows])
    assert bcubed_fscore(y[order], parts.labels_)[2] >= bcubed_fscore(y, library.labels_)[2] - 0.02
    with pytest.raises(ValueError, match="512-dimensional"):
        library.add(X[:3, :128])
    path = library.save(tmp_path / "faces.state")
    again = IncrementalClusterer.load(path, est)
    assert again.n_features_in_ == 512
    np.testing.assert_array_equal(again.labels_, library.labels_)
    again.add(X[:2] + 0.01)
    assert len(again) == 242
