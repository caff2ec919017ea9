"""The parameter declarations of ``_params``: every rule, the decorator and the skip switch."""

from __future__ import annotations

import importlib
import inspect
import threading

import numpy as np
import pytest

from linkage_gcn import _params
from linkage_gcn._params import (
    PARAMS,
    Check,
    Flag,
    Integer,
    Number,
    OneOf,
    Options,
    Rule,
    check_param,
    check_params,
    skip_validation,
    validate_params,
    validation_skipped,
)

# ------------------------------------------------------------------ Integer


@pytest.mark.parametrize("value", [1, 5, np.int32(5), np.uint8(5)])
def test_integer_accepts_and_normalises(value):
    out = Integer(1, 5)(value, "k")
    assert out == int(value) and type(out) is int


@pytest.mark.parametrize(
    ("rule", "value", "match"),
    [
        (Integer(1), 0, "k must be an integer >= 1, got 0"),
        (Integer(None, 5), 6, "k must be an integer <= 5, got 6"),
        (Integer(), True, "k must be an integer, got True"),
        (Integer(), 2.0, "k must be an integer, got 2.0"),
        (Integer(), "2", "k must be an integer, got '2'"),
        (Integer(), None, "k must be an integer, got None"),  # not optional
    ],
)
def test_integer_refuses(rule, value, match):
    with pytest.raises(ValueError, match=match):
        rule(value, "k")


def test_integer_optional_parse_describe():
    assert Integer(1, optional=True)(None, "k") is None
    assert Integer(1).parse("7") == 7
    assert Integer(1).parse(" 7 ") == 7
    assert Integer(1).parse("7.5") == "7.5"  # the text, which the rule then refuses
    assert Integer(1).parse("none") == "none"  # not optional: the text
    assert Integer(1, optional=True).parse("None") is None
    assert Integer(1).describe() == "an integer >= 1"
    assert Integer(None, 9).describe() == "an integer <= 9"
    assert Integer(0, 9).describe() == "an integer in [0, 9]"
    assert Integer().describe() == "an integer"
    assert repr(Integer(2)) == "Integer(an integer >= 2)"
    assert Integer().choices is None


# ------------------------------------------------------------------ Number


@pytest.mark.parametrize(
    ("closed", "accepted", "refused"),
    [
        ("both", (0, 0.5, 1), (-0.1, 1.1)),
        ("left", (0, 0.5), (1, -0.1)),
        ("right", (0.5, 1), (0, 1.1)),
        ("neither", (0.5,), (0, 1)),
    ],
)
def test_number_bounds_follow_closed(closed, accepted, refused):
    rule = Number(0, 1, closed=closed)
    left = "[" if closed in ("both", "left") else "("
    right = "]" if closed in ("both", "right") else ")"
    assert rule.interval() == f"{left}0, 1{right}"
    for v in accepted:
        out = rule(v, "x")
        assert out == float(v) and type(out) is float
    for v in refused:
        with pytest.raises(ValueError, match=rf"x must be a number in \{left}0, 1\{right}, got"):
            rule(v, "x")


@pytest.mark.parametrize(
    "value", [True, "0.5", None, float("nan"), float("inf"), np.float32("-inf"), 10**400,
              np.complex128(0.5), [0.5], np.array(0.5)],
)  # fmt: skip
def test_number_refuses_what_is_not_a_finite_real(value):
    with pytest.raises(ValueError, match="lr must be a finite number, got"):
        Number(0)(value, "lr")


def test_number_parse_describe_and_bad_closed():
    assert Number(0).parse("1e-3") == 0.001
    assert Number(0).parse("fast") == "fast"
    assert Number(0, optional=True).parse("none") is None
    assert Number(0, optional=True)(None, "x") is None
    assert Number(0, 1).describe() == "a number in [0, 1]"
    assert Number(0, closed="neither").describe() == "a number in (0, inf)"
    assert Number().describe() == "a number in (-inf, inf)"
    assert Number(1e-7).interval() == "[1e-07, inf)"
    with pytest.raises(ValueError, match="closed must be 'both', 'left', 'right' or 'neither'"):
        Number(closed="open")


# ------------------------------------------------------------------ Options


def test_options_from_a_tuple():
    rule = Options(["cosine", "l2"])
    assert rule.choices == ("cosine", "l2")
    assert rule("l2", "metric") == "l2"
    for bad in ("L2", 2, None):
        with pytest.raises(ValueError, match=r"unknown metric .*; choose one of 'cosine', 'l2'"):
            rule(bad, "metric")
    assert rule.describe() == "one of 'cosine', 'l2'"
    assert rule.parse("l2") == "l2"
    assert Options(("a",), optional=True)(None, "x") is None
    assert Options(("a",), optional=True).parse("None") is None


def test_options_read_their_registry_live(monkeypatch):
    losses = importlib.import_module("linkage_gcn.losses")
    rule = Options("linkage_gcn.losses:LOSSES")
    assert rule.choices == tuple(losses.LOSSES)
    monkeypatch.setitem(losses.LOSSES, "my-loss", losses.CrossEntropyLoss)
    assert rule.choices[-1] == "my-loss"  # a registered name is accepted at once
    assert rule("my-loss", "loss") == "my-loss"
    assert "'my-loss'" in rule.describe()
    monkeypatch.delitem(losses.LOSSES, "my-loss")
    with pytest.raises(ValueError, match="unknown loss 'my-loss'"):
        rule("my-loss", "loss")


def _options_in(rule):
    if isinstance(rule, Options):
        yield rule
    if isinstance(rule, OneOf):
        for r in rule.rules:
            yield from _options_in(r)


REGISTRY_OPTIONS = [
    (name, opt)
    for name, rule in PARAMS.items()
    for opt in _options_in(rule)
    if isinstance(opt.source, str)
]


def test_registry_backed_options_exist():
    names = {name for name, _ in REGISTRY_OPTIONS}
    assert {"preprocessing", "metric", "knn_backend", "precision", "pool", "merge"} <= names


@pytest.mark.parametrize(("name", "rule"), REGISTRY_OPTIONS, ids=[n for n, _ in REGISTRY_OPTIONS])
def test_every_registry_backed_option_resolves_its_choices(name, rule):
    module, _, attr = rule.source.partition(":")
    registry = getattr(importlib.import_module(module), attr)  # the registry itself
    assert rule.choices == tuple(registry) and rule.choices
    assert all(isinstance(c, str) for c in rule.choices)
    for choice in rule.choices:
        assert rule(choice, name) == choice


# ------------------------------------------------------------------ Flag


def test_flag():
    rule = Flag()
    assert rule(True, "f") is True and rule(np.bool_(False), "f") is False
    for bad in (1, "yes", None):
        with pytest.raises(ValueError, match="f must be True or False"):
            rule(bad, "f")
    texts = {"true": True, "Yes": True, "1": True, "FALSE": False, "no": False, "0": False,
             "maybe": "maybe", "none": "none"}  # fmt: skip
    for text, want in texts.items():
        assert rule.parse(text) == want
    assert Flag(optional=True).parse("none") is None
    assert Flag(optional=True)(None, "f") is None
    assert rule.describe() == "True or False"


# ------------------------------------------------------------------ OneOf


def test_one_of_takes_the_first_rule_that_accepts():
    rule = OneOf(Number(0, 1), Options(("auto",)))
    assert rule("auto", "threshold") == "auto"
    assert rule(1, "threshold") == 1.0 and type(rule(1, "threshold")) is float
    assert rule.choices == ("auto",)
    assert rule.describe() == "a number in [0, 1] or 'auto'"
    assert rule.parse("0.25") == 0.25 and rule.parse("auto") == "auto"
    assert rule.parse("2") == "2"  # no rule accepts it: the text, refused by the rule
    for bad in (2, "2", None, float("nan"), "Auto"):
        with pytest.raises(ValueError, match="threshold must be a number in \\[0, 1\\] or 'auto'"):
            rule(bad, "threshold")


def test_one_of_messages_list_every_alternative():
    rule = OneOf(Integer(1), Options(("a", "b")), Flag())
    assert rule.describe() == "an integer >= 1 or 'a' or 'b' or True or False"
    assert rule.choices == ("a", "b")
    with pytest.raises(ValueError, match="x must be an integer >= 1 or 'a' or 'b' or True or Fa"):
        rule(0, "x")
    assert OneOf(Integer(1), Number(0)).choices is None
    assert OneOf(Integer(1), optional=True)(None, "x") is None
    assert OneOf(Integer(1), optional=True).parse("none") is None


# ------------------------------------------------------------------ Check


def test_check_rule():
    rule = Check(lambda v, n: tuple(v), "a tuple", parse=lambda t: t.split(","))
    assert rule([1, 2], "sizes") == (1, 2)
    assert rule.parse("1,2") == ["1", "2"]
    assert rule.describe() == "a tuple" and repr(rule) == "Check(a tuple)"
    assert Check(lambda v, n: v, "x").parse("abc") == "abc"  # no parser: the text
    assert Check(lambda v, n: v, "x", optional=True).parse("none") is None
    assert Check(lambda v, n: 1 / 0, "x", optional=True)(None, "v") is None  # never called

    def refuse(value, name):
        raise ValueError(f"{name} is bad")

    with pytest.raises(ValueError, match="sizes is bad"):
        Check(refuse, "never")([1], "sizes")


def test_rule_base_parse_and_describe():
    class Anything(Rule):
        def check(self, value, name):
            return value

    assert Anything().parse("text") == "text"
    assert Anything(optional=True).parse("None") is None
    assert Anything().describe() == "Anything" and Anything().choices is None


# ------------------------------------------------------------------ PARAMS


def test_every_declared_rule_describes_itself():
    for name, rule in PARAMS.items():
        assert isinstance(rule, Rule), name
        assert isinstance(rule.describe(), str) and rule.describe(), name
        assert repr(rule).startswith(type(rule).__name__), name


def test_every_estimator_default_passes_its_declaration():
    from linkage_gcn import LinkageClusterer

    defaults = LinkageClusterer().get_params(deep=False)
    declared = [n for n in defaults if n in PARAMS]
    assert len(declared) >= 20
    for name in declared:
        check_param(name, defaults[name])  # no default is refused by its own rule


@pytest.mark.parametrize(
    ("name", "text", "want"),
    [("k_at_hop", "20,5", (20, 5)), ("k_at_hop", "20 5", (20, 5)), ("epochs", "3", 3),
     ("lr", "0.01", 0.01), ("threshold", "auto", "auto"), ("threshold", "0.7", 0.7),
     ("hidden_channels", "64, 32", (64, 32)), ("dropout", "0.5", 0.5), ("step", "0.5", 0.5),
     ("pivot_similarity", "yes", True), ("max_size", "none", None), ("threads", "2", 2)],
)  # fmt: skip
def test_declared_rules_parse_command_line_text(name, text, want):
    value = PARAMS[name].parse(text)
    assert value == want
    assert check_param(name, value) == want


@pytest.mark.parametrize(
    ("name", "text", "match"),
    [("k_at_hop", "20 x", "k_at_hop"), ("dropout", "half", "dropout must be"),
     ("step", "x", "step must be"), ("lr", "fast", "lr must be a finite number, got 'fast'"),
     ("epochs", "2.5", "epochs must be an integer, got '2.5'")],
)  # fmt: skip
def test_unparsable_text_is_refused_by_the_rule_naming_the_parameter(name, text, match):
    with pytest.raises(ValueError, match=match):
        check_param(name, PARAMS[name].parse(text))


@pytest.mark.parametrize(
    ("name", "value", "match"),
    [
        ("k_at_hop", (0, 5), r"k_at_hop\[0\] must be an integer >= 1"),
        ("dropout", 1.0, r"dropout must be a number in \[0, 1\), got 1.0"),
        ("step", 0, r"step must be a number in \(0, 1\]"),
        ("lr", 0, r"lr must be a number in \(0, inf\), got 0"),
        ("lr_decay", 1.5, r"lr_decay must be a number in \[0, 1\], got 1.5"),
        ("loss", "hinge", "unknown loss 'hinge'"),
        ("loss", 5, "loss must be a name or a callable, got int"),
        ("sampler", "smote", "unknown sampler 'smote'; choose one of 'topk', 'rs', 'riws'"),
        ("sampler", 5, "unknown sampler 5; .* or pass a Hop1Sampler"),
        ("merge", 5, "unknown merge 5; choose one of"),
        ("device", "tpu", "unknown device 'tpu'"),
        ("random_state", "a", "random_state must be None, an int or a numpy RandomState"),
        ("random_state", -1, "random_state must be None, an int or a numpy RandomState"),
        ("hidden_channels", 64, "hidden_channels must be a sequence of layer sizes"),
        ("verbose", 1, "verbose must be True or False"),
    ],
)
def test_declared_rules_name_the_parameter(name, value, match):
    with pytest.raises(ValueError, match=match):
        check_param(name, value)


def test_sampler_rule_accepts_names_and_objects():
    from linkage_gcn.samplers import RIWSSampler

    s = RIWSSampler(5)
    assert check_param("sampler", s) is s
    assert check_param("sampler", "riws") == "riws"


def test_check_param_and_check_params():
    assert check_param("merge_runs", 5) == 5
    assert check_param("batch_size", None, PARAMS["inference_batch_size"]) is None  # an override
    with pytest.raises(KeyError, match="'nosuch' has no declaration in PARAMS"):
        check_param("nosuch", 1)
    assert check_params({"epochs": np.int64(2), "lr": 1}) == {"epochs": 2, "lr": 1.0}
    assert check_params({"tile": 3}, {"tile": Integer(1)}) == {"tile": 3}
    with pytest.raises(KeyError, match="'nosuch', 'other' have no declaration"):
        check_params({"epochs": 2, "nosuch": 1, "other": 2})
    with pytest.raises(ValueError, match="epochs must be an integer >= 1"):
        check_params({"epochs": 0})


# ------------------------------------------------------------------ validate_params


@validate_params(batch_size=PARAMS["inference_batch_size"], tile=Integer(1))
def _score(x, k1=20, *, batch_size=None, tile=4, other="free"):
    return x, k1, batch_size, tile, other


def test_validate_params_binds_positional_keyword_and_defaults():
    assert _score("x") == ("x", 20, None, 4, "free")
    assert _score("x", np.int64(5)) == ("x", 5, None, 4, "free")  # positional, normalised
    out = _score("x", k1=5, batch_size=np.int32(8), tile=2, other=object)
    assert out[1:4] == (5, 8, 2) and type(out[2]) is int
    with pytest.raises(ValueError, match="k1 must be an integer >= 1, got 0"):
        _score("x", 0)
    with pytest.raises(ValueError, match="k1 must be an integer >= 1, got 0"):
        _score("x", k1=0)
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):  # the override
        _score("x", batch_size=0)
    with pytest.raises(ValueError, match="tile must be an integer >= 1"):  # an extra rule
        _score("x", tile=0)
    with pytest.raises(TypeError):  # a wrong call is still a wrong call
        _score()
    assert set(_score.__linkage_gcn_params__) == {"k1", "batch_size", "tile"}
    assert inspect.signature(_score) == inspect.signature(_score.__wrapped__)


def test_validate_params_checks_a_bad_default():
    @validate_params()
    def train(epochs=0):
        return epochs

    with pytest.raises(ValueError, match="epochs must be an integer >= 1, got 0"):
        train()
    assert train(epochs=2) == 2


def test_validate_params_without_declared_arguments_passes_through():
    @validate_params()
    def f(a, b=2):
        return a, b

    assert f(1) == (1, 2) and f.__linkage_gcn_params__ == {}


def test_validate_params_on_a_method():
    class Model:
        @validate_params()
        def fit(self, epochs=1):
            return epochs

    assert Model().fit(3) == 3
    with pytest.raises(ValueError, match="epochs"):
        Model().fit(epochs=-1)


# ------------------------------------------------------------------ skip_validation


def test_skip_validation_nests_and_restores():
    assert not validation_skipped()
    with skip_validation():
        assert validation_skipped()
        assert _score("x", 0) == ("x", 0, None, 4, "free")  # not checked
        with skip_validation():
            assert validation_skipped()
        assert validation_skipped()  # the inner exit keeps the outer skip
    assert not validation_skipped()
    with pytest.raises(ValueError, match="k1"):
        _score("x", 0)


def test_skip_validation_restores_after_an_exception():
    with pytest.raises(RuntimeError, match="inside"), skip_validation():
        raise RuntimeError("inside")
    assert not validation_skipped()
    with skip_validation():
        with pytest.raises(RuntimeError), skip_validation():
            raise RuntimeError
        assert validation_skipped()
    assert not validation_skipped()


def test_skip_validation_is_per_thread():
    seen = []
    with skip_validation():
        t = threading.Thread(target=lambda: seen.append(validation_skipped()))
        t.start()
        t.join()
    assert seen == [False]  # another thread validates on its own


def test_params_module_is_a_leaf():
    """``_params`` imports no module of the package but ``_validation`` (registries lazily)."""
    lines = inspect.getsource(_params).splitlines()
    imports = [line.split()[1] for line in lines if line.startswith(("from .", "import linkage"))]
    assert imports == ["._validation"]
