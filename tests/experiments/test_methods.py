import pytest
import torch

from linkage_gcn.experiments import EXTRA_METHODS, METHODS, PAPER_SETTINGS, methods, resolve_methods
from linkage_gcn.experiments.methods import all_methods, method_label
from linkage_gcn.losses import resolve_loss


def test_methods_are_the_papers_table_1():
    expected = {  # name: (sampler, gamma, loss), in the paper's order
        "L-GCN": ("topk", 1.0, "ce"), "CB": ("topk", 1.0, "cb"),
        "FL": ("topk", 1.0, "focal-fork"), "RS": ("rs", 1.2, "ce"),
        "RIWS": ("riws", 2.0, "ce"), "CB+RS": ("rs", 1.2, "cb"),
        "FL+RS": ("rs", 1.2, "focal-fork"), "CB+RIWS": ("riws", 2.0, "cb"),
        "FL+RIWS": ("riws", 2.0, "focal-fork"),
    }  # fmt: skip
    assert list(METHODS) == list(expected)
    for name, (sampler, gamma, loss) in expected.items():
        assert METHODS[name] == {"sampler": sampler, "gamma": gamma, "loss": loss}, name
    assert EXTRA_METHODS == {"CBg+RIWS": {"sampler": "riws", "gamma": 2.0, "loss": "cb-graph"}}
    assert PAPER_SETTINGS == {
        "pivot_similarity": False,
        "lr_decay": 0.1,
        "merge": "threshold",
        "calibration": "train",
    }


def test_fl_rows_are_the_forks_focal_loss():
    assert "focal-fork" in methods.__doc__ and "fork" in methods.__doc__
    fl = resolve_loss(METHODS["FL"]["loss"])  # fails until losses has "focal-fork"
    symmetric = resolve_loss("focal")
    logits = torch.zeros(2, 2)  # p = 0.5 for both classes: only the class weights differ
    pos, neg = torch.tensor([1, 1]), torch.tensor([0, 0])
    # the fork weighs positives 1 - alpha = 0.75 and negatives alpha = 0.25 ...
    assert float(fl(logits, pos)) == pytest.approx(3 * float(fl(logits, neg)))
    # ... the reverse of eq. 3 as printed
    assert float(symmetric(logits, neg)) == pytest.approx(3 * float(symmetric(logits, pos)))


def test_resolve_methods_by_name():
    assert list(resolve_methods()) == [*METHODS, *EXTRA_METHODS]
    assert resolve_methods("CB") == {"CB": METHODS["CB"]}
    assert list(resolve_methods(("RIWS", "L-GCN"))) == ["RIWS", "L-GCN"]  # the order given
    got = resolve_methods(["RIWS"])
    got["RIWS"]["gamma"] = 9.0  # a copy: the registry is untouched
    assert METHODS["RIWS"]["gamma"] == 2.0 and resolve_methods()["RIWS"]["gamma"] == 2.0


def test_resolve_methods_mapping_is_used_as_is():
    custom = {"mine": {"sampler": "rs", "gamma": 3.0, "loss": "cb"}}
    got = resolve_methods(custom)
    assert got == custom and got["mine"] is not custom["mine"]


@pytest.mark.parametrize(
    ("methods", "match"),
    [
        (["L-GCN", "OHEM"], "unknown method 'OHEM'"),
        ([], "empty"),
        ({}, "empty"),
        (["RS", "RS"], "twice"),
        ({"mine": "riws"}, "must be a mapping"),
        (3, "names or a mapping"),
    ],
)
def test_resolve_methods_rejects(methods, match):
    with pytest.raises(ValueError, match=match):
        resolve_methods(methods)


def test_method_label_maps_every_method_back():
    for name, p in all_methods().items():
        assert method_label(p["sampler"], p["loss"]) == name
    assert method_label("rs", "focal") == "rs/focal"  # eq. 3 as printed is not a paper row
