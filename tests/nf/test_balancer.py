"""The 80 % overload balancer's decisions on hand-made loads."""

from __future__ import annotations

import pytest

from nf.balancer import Decision, InstanceLoad, Move, NewInstance, decide, execute


def L(name: str, cluster: str, usage: float, flows: dict[str, float], cap: float = 1000.0) -> InstanceLoad:  # noqa: N802
    return InstanceLoad(name, cluster, usage, cap, flows)


def test_nothing_overloaded_means_no_action() -> None:
    d = decide([L("a", "c1", 0.79, {"1": 500}), L("b", "c1", 0.1, {})])
    assert d.empty and d == Decision()


def test_highest_rate_flow_moves_to_least_loaded_member_of_the_cluster() -> None:
    d = decide([
        L("a", "c1", 0.9, {"1": 100, "2": 300, "3": 50}),
        L("b", "c1", 0.5, {"4": 500}),
        L("c", "c1", 0.3, {"5": 300}),
        L("x", "c2", 0.0, {}),
    ])
    assert d.moves == (Move("2", "a", "c", 300, intra_cluster=True),)
    assert d.new_instances == ()


def test_new_instance_in_cluster_when_the_member_would_exceed_80_percent() -> None:
    d = decide([L("a", "c1", 0.95, {"1": 400, "2": 200}), L("b", "c1", 0.5, {"3": 500})])
    assert d.new_instances == (NewInstance("c1-n1", "c1"),)
    assert d.moves == (Move("1", "a", "c1-n1", 400, intra_cluster=True, to_new_instance=True),)


def test_full_cluster_moves_full_state_to_another_cluster() -> None:
    d = decide(
        [
            L("a", "c1", 0.95, {"1": 400, "2": 200}),
            L("b", "c1", 0.7, {"3": 700}),
            L("x", "c2", 0.6, {"9": 600}),
            L("y", "c2", 0.2, {"8": 200}),
        ],
        max_per_cluster=2,
    )
    assert d.overloaded_clusters == ("c1",)
    assert d.moves == (Move("1", "a", "y", 400, intra_cluster=False),)


def test_everything_full_starts_an_instance_elsewhere() -> None:
    d = decide(
        [L("a", "c1", 0.95, {"1": 400}), L("b", "c1", 0.9, {"3": 900}), L("x", "c2", 0.85, {"9": 850})],
        max_per_cluster=2,
    )
    # c2 has room for a member (1 < 2): the new instance goes there, full state (other cluster)
    assert d.new_instances[0].cluster == "c2"
    assert d.moves[0].intra_cluster is False and d.moves[0].to_new_instance is True
    assert d.moves[0].src == "a"


def test_decisions_account_for_earlier_moves_of_the_same_round() -> None:
    # both a and b are overloaded; c can take one 300 pps flow but not two
    d = decide([
        L("a", "c1", 0.9, {"1": 300}),
        L("b", "c1", 0.85, {"2": 300}),
        L("c", "c1", 0.4, {"3": 400}),
    ])
    assert d.moves[0] == Move("1", "a", "c", 300, intra_cluster=True)
    assert d.moves[1].dst != "c" and d.moves[1].to_new_instance


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="capacity_pps"):
        L("a", "c1", 0.5, {}, cap=0)
    with pytest.raises(ValueError, match="threshold"):
        decide([], threshold=1.5)


def test_execute_launches_before_moving() -> None:
    d = decide([L("a", "c1", 0.95, {"1": 400, "2": 200}), L("b", "c1", 0.5, {"3": 500})])
    log: list[str] = []
    execute(
        d, launch=lambda n: log.append(f"launch {n.name}"), migrate=lambda m: log.append(f"move {m.group}")
    )
    assert log == ["launch c1-n1", "move 1"]
