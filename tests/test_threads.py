"""threads="auto": the CPUs the process may use, less the busy ones; deferring to a choice."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from linkage_gcn import LinkageClusterer, _threads
from linkage_gcn._threads import _cgroup_quota, available_cpus, cpu_threads, default_threads
from linkage_gcn.datasets import make_identities


@pytest.fixture
def machine(monkeypatch):
    """A machine of 4 CPUs, no quota, the load given by the test; nothing chosen elsewhere."""
    state = {"cpus": 4, "load": 0.0, "quota": None}
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(state["cpus"])),
                        raising=False)  # fmt: skip
    monkeypatch.setattr(_threads, "_cgroup_quota", lambda: state["quota"])
    monkeypatch.setattr(os, "getloadavg", lambda: (state["load"], 0.0, 0.0))
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    # this process used no CPU since import: all of the load is other processes'
    monkeypatch.setattr(_threads, "_CLOCKS_AT_IMPORT", (_threads.time.monotonic(),
                                                        _threads.time.process_time()))
    monkeypatch.setattr(_threads, "_TORCH_AT_IMPORT", torch.get_num_threads())
    monkeypatch.setattr(_threads, "_busy_now", lambda window=0.2: None)  # the load average
    monkeypatch.setattr(_threads, "_LAST", [None, 0.0])
    monkeypatch.setattr(_threads, "_REUSE_SECONDS", 0.0)
    return state


@pytest.mark.parametrize("load, expected", [(0.0, 4), (0.4, 4), (1.2, 3), (2.6, 1), (9.0, 1)])
def test_auto_is_the_free_cpus(machine, load, expected):
    machine["load"] = load
    assert default_threads() == expected


def test_the_cgroup_quota_caps_the_cpus(machine, tmp_path):
    machine["quota"] = 2
    assert available_cpus() == 2 and default_threads() == 2
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert _cgroup_quota(tmp_path) == 2
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert _cgroup_quota(tmp_path) is None
    (tmp_path / "cpu.max").unlink()
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("300000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert _cgroup_quota(tmp_path) == 3
    assert _cgroup_quota(tmp_path / "nothing") is None


def test_this_process_own_load_is_not_counted(machine, monkeypatch):
    machine["load"] = 2.0
    # over the last minute this process kept 2 CPUs busy: the load is its own
    monkeypatch.setattr(_threads, "_CLOCKS_AT_IMPORT", (_threads.time.monotonic() - 60.0,
                                                        _threads.time.process_time() - 120.0))
    assert default_threads() == 4


def test_auto_sets_torch_and_restores(machine):
    machine["load"] = 2.6
    before = torch.get_num_threads()
    with cpu_threads("auto"):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_auto_defers_to_a_choice_made_elsewhere(machine, monkeypatch):
    machine["load"] = 0.0
    before = torch.get_num_threads()
    with cpu_threads(3), cpu_threads("auto"):  # an enclosing number
        assert torch.get_num_threads() == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # the environment
    with cpu_threads("auto"):
        assert torch.get_num_threads() == before
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr(_threads, "_TORCH_AT_IMPORT", before + 5)  # set by hand since import
    with cpu_threads("auto"):
        assert torch.get_num_threads() == before
    with cpu_threads(None):
        assert torch.get_num_threads() == before


def test_the_estimator_defaults_to_auto_and_a_checkpoint_does_not_carry_it(machine, tmp_path):
    machine["load"] = 3.5
    assert LinkageClusterer().threads == "auto"
    X, y = make_identities(30, random_state=0)
    est = LinkageClusterer(k_at_hop=(4, 2), active_connection=2, epochs=1, hidden_channels=(8,),
                           random_state=0, verbose=False, threads=1,
                           cascade=False)  # every pivot by the GCN  # fmt: skip
    seen = []
    from linkage_gcn import estimator as module

    score = module.predict_links

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return score(*args, **kwargs)

    est.fit(X, y).set_params(threads=2)  # fitted on one thread: two are slow on a busy machine
    back = LinkageClusterer.load(est.save(tmp_path / "m.pt"))
    assert back.threads == "auto"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(module, "predict_links", spy)
        back.predict(X)
        est.predict(X)
    assert seen == [1, 2]  # 4 CPUs, 3.5 busy: one thread; the saved model's own 2
    assert np.array_equal(back.predict(X), est.predict(X))


def test_bad_threads_are_refused():
    X, y = make_identities(10, random_state=0)
    for bad in (0, "two", 1.5):
        with pytest.raises(ValueError, match="threads"):
            LinkageClusterer(threads=bad).fit(X, y)


def test_busy_cpus_are_read_from_proc_stat(tmp_path):
    stat = tmp_path / "stat"
    stat.write_text("cpu  10 0 10 80 0 0 0 0 0 0\n"
                    "cpu0 5 0 5 40 0 0 0 0 0 0\n"
                    "cpu1 5 0 5 40 0 0 0 0 0 0\n"
                    "cpu2 100 0 0 0 0 0 0 0 0 0\n"
                    "intr 1 2 3\n")  # fmt: skip
    assert _threads._cpu_ticks({0, 1}, stat) == (100, 80)  # cpu2 is not ours
    assert _threads._cpu_ticks({5}, stat) is None
    busy = _threads._busy_now(0.05)
    if busy is not None:  # Linux: a count of CPUs
        assert 0.0 <= busy <= available_cpus() + 0.5


def test_a_choice_is_reused_for_a_few_seconds(machine, monkeypatch):
    monkeypatch.setattr(_threads, "_REUSE_SECONDS", 60.0)
    machine["load"] = 0.0
    assert default_threads() == 4
    machine["load"] = 3.5
    assert default_threads() == 4  # measured a moment ago: not measured again
    monkeypatch.setattr(_threads, "_REUSE_SECONDS", 0.0)
    assert default_threads() == 1
