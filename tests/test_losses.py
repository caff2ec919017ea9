import math

import pytest
import torch

from linkage_gcn.losses import (
    ClassBalancedLoss,
    FocalLoss,
    class_balanced_loss,
    cross_entropy_loss,
    focal_loss,
    resolve_loss,
)

LOGITS = torch.tensor([[0.2, 1.5], [1.0, -0.5], [0.0, 0.3], [2.0, 0.1], [-1.0, 1.0]])
TARGET = torch.tensor([1, 0, 1, 0, 0])


def softmax_p(logits):
    e = [[math.exp(a), math.exp(b)] for a, b in logits.tolist()]
    return [(x[1] / (x[0] + x[1])) for x in e]  # p(link)


def hand_ce():
    p = softmax_p(LOGITS)
    return [-math.log(pi) if y else -math.log(1 - pi) for pi, y in zip(p, TARGET.tolist())]


def test_cross_entropy_matches_hand_computation():
    assert cross_entropy_loss(LOGITS, TARGET).item() == pytest.approx(sum(hand_ce()) / 5)


def test_class_balanced_matches_eq2():
    ce = hand_ce()
    pos = [c for c, y in zip(ce, TARGET.tolist()) if y]
    neg = [c for c, y in zip(ce, TARGET.tolist()) if not y]
    expected = (sum(pos) / len(pos) + sum(neg) / len(neg)) / 2
    assert class_balanced_loss(LOGITS, TARGET).item() == pytest.approx(expected)
    assert ClassBalancedLoss()(LOGITS, TARGET).item() == pytest.approx(expected)


def test_class_balanced_single_class_is_mean_of_present_class():
    ce = hand_ce()
    only_neg = torch.zeros(5, dtype=torch.long)
    logp_neg = [-math.log(1 - p) for p in softmax_p(LOGITS)]
    assert class_balanced_loss(LOGITS, only_neg).item() == pytest.approx(sum(logp_neg) / 5)
    assert len(ce) == 5


def test_class_balanced_per_graph():
    group = torch.tensor([0, 0, 1, 1, 1])
    ce = hand_ce()
    g0 = (ce[0] + ce[1]) / 2  # one positive, one negative
    g1 = (ce[2] + (ce[3] + ce[4]) / 2) / 2
    expected = (g0 + g1) / 2
    got = class_balanced_loss(LOGITS, TARGET, group)
    assert got.item() == pytest.approx(expected)
    assert ClassBalancedLoss(per_graph=True)(LOGITS, TARGET, group=group).item() == pytest.approx(
        expected
    )
    # a graph with one class contributes the mean of that class
    group = torch.tensor([0, 0, 1, 2, 2])
    g2 = (ce[3] + ce[4]) / 2
    assert class_balanced_loss(LOGITS, TARGET, group).item() == pytest.approx(
        ((ce[0] + ce[1]) / 2 + ce[2] + g2) / 3
    )


@pytest.mark.parametrize("alpha,gamma", [(0.25, 2.0), (0.5, 0.0), (0.75, 1.0)])
def test_focal_matches_eq3(alpha, gamma):
    p = softmax_p(LOGITS)
    expected = []
    for pi, y in zip(p, TARGET.tolist()):
        if y:
            expected.append(-alpha * (1 - pi) ** gamma * math.log(pi))
        else:
            expected.append(-(1 - alpha) * pi**gamma * math.log(1 - pi))
    got = focal_loss(LOGITS, TARGET, alpha=alpha, gamma=gamma, reduction="none")
    assert got.tolist() == pytest.approx(expected, rel=1e-5)
    assert FocalLoss(alpha, gamma)(LOGITS, TARGET).item() == pytest.approx(sum(expected) / 5)
    assert focal_loss(LOGITS, TARGET, alpha, gamma, "sum").item() == pytest.approx(sum(expected))


def test_focal_gamma_zero_half_alpha_is_half_ce():
    ce = cross_entropy_loss(LOGITS, TARGET)
    assert focal_loss(LOGITS, TARGET, alpha=0.5, gamma=0.0).item() == pytest.approx(ce.item() / 2)


def test_binary_logits_equal_two_column_logits():
    z = LOGITS[:, 1] - LOGITS[:, 0]  # the same probabilities as a single logit
    for fn in (cross_entropy_loss, class_balanced_loss, focal_loss):
        assert fn(z, TARGET).item() == pytest.approx(fn(LOGITS, TARGET).item(), rel=1e-5)


def test_gradients_flow():
    logits = LOGITS.clone().requires_grad_(True)
    for loss in ("ce", "cb", "focal"):
        resolve_loss(loss)(logits, TARGET).backward()
        assert logits.grad is not None and torch.isfinite(logits.grad).all()
        logits.grad = None


def test_errors_and_resolution():
    with pytest.raises(ValueError, match="shape"):
        focal_loss(torch.zeros(3, 3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="target has 2 entries"):
        cross_entropy_loss(torch.zeros(3, 2), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="alpha"):
        FocalLoss(alpha=1.5)
    with pytest.raises(ValueError, match="unknown loss"):
        resolve_loss("hinge")
    with pytest.raises(ValueError, match="callable"):
        resolve_loss(3)
    custom = lambda logits, target: logits.sum()  # noqa: E731
    assert resolve_loss(custom) is custom
    assert repr(resolve_loss("cb-graph")) == "ClassBalancedLoss(per_graph=True)"
