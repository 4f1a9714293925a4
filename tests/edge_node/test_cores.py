"""The failover rule between core nodes, and LIGHTCONE_CORE_URL's URLs and their addresses:
pure, no event loop, a fake resolver passed in."""

from __future__ import annotations

import socket
from collections.abc import Sequence

import pytest

from edge_node.cores import (
    MAX_CANDIDATES,
    MAX_CORE_URLS,
    MIN_DIAL_GAP_S,
    Candidate,
    Failover,
    parse,
    resolve,
    system_resolver,
)
from shared.config import ConfigError, from_environ
from shared.tasks import backoff_s

MIN_S, MAX_S, HEALTHY_S = 0.1, 5.0, 5.0


def failover() -> Failover:
    return Failover(min_s=MIN_S, max_s=MAX_S, healthy_after_s=HEALTHY_S)


def nodes(*urls: str) -> list[Candidate]:
    return resolve(parse(",".join(urls)), no_names)[0]


def no_names(host: str, port: int) -> list[str]:
    raise AssertionError(f"resolved {host!r}: only IP literals expected")


A, B, C = nodes("http://127.0.0.1:1", "http://127.0.0.1:2", "http://[::1]:3")


def dials(rule: Failover, candidates: Sequence[Candidate], n: int) -> list[Candidate]:
    """The next ``n`` dials, each failing at once (one second apart)."""
    chosen = []
    for i in range(n):
        now = 100.0 + i
        pick = rule.choose(candidates, now)
        assert pick is not None
        chosen.append(pick)
        rule.ended(now, 0.5)
    return chosen


# --- the order ---------------------------------------------------------------------------------


def test_the_first_dial_goes_to_the_first_url() -> None:
    assert failover().choose([A, B, C], 0.0) == A


def test_a_failed_node_goes_last_and_the_untried_ones_come_first() -> None:
    assert dials(failover(), [A, B, C], 7) == [A, B, C, A, B, C, A]


def test_two_nodes_alternate() -> None:
    assert dials(failover(), [A, B], 5) == [A, B, A, B, A]


def test_a_failed_node_is_never_first_again_while_another_is_untried() -> None:
    """A fails; C appears later (a new Machine): C and B are tried before A again."""
    rule = failover()
    assert dials(rule, [A, B], 1) == [A]
    assert dials(rule, [A, B, C], 3) == [B, C, A]


def test_the_node_that_failed_longest_ago_comes_first_once_all_have_failed() -> None:
    rule = failover()
    dials(rule, [A, B, C], 3)  # A, B, C all failed, in that order
    assert rule.order([C, B, A]) == [A, B, C]


def test_a_node_that_ended_a_long_healthy_session_still_goes_last() -> None:
    rule = failover()
    assert rule.choose([A, B], 0.0) == A
    rule.opened(0.1)
    rule.heard(3600.0)
    rule.ended(3600.0, 0.5)
    assert rule.choose([A, B], 3600.1) == B


def test_no_candidate_means_no_dial_and_a_growing_delay() -> None:
    rule = failover()
    assert rule.choose([], 0.0) is None
    assert rule.current is None
    rule.ended(0.0, 0.999)
    assert rule.attempt == 1


def test_failures_of_nodes_no_longer_listed_are_forgotten() -> None:
    """Memory is bounded by the candidates: a node that left and came back is untried."""
    rule = failover()
    dials(rule, [A, B], 2)  # A then B failed
    dials(rule, [B, C], 1)  # C (untried) — A's failure is forgotten here
    assert rule.order([A, B, C]) == [A, B, C]


# --- the backoff -------------------------------------------------------------------------------


def test_the_delay_doubles_with_full_jitter_up_to_the_cap() -> None:
    rule = failover()
    delays = []
    for i in range(10):
        rule.choose([A, B], 10.0 * i)
        delays.append(rule.ended(10.0 * i + 1, 0.5))  # a dial of 1 s: longer than the gap
    expected = [backoff_s(i, min_s=MIN_S, max_s=MAX_S, jitter=0.5) for i in range(10)]
    assert delays == expected
    assert delays[0] == 0.05 and delays[-1] == MAX_S / 2


def test_a_healthy_session_resets_the_backoff() -> None:
    """Healthy: the core was heard at least one link timeout after the link opened."""
    rule = failover()
    dials(rule, [A, B], 6)
    assert rule.attempt == 6
    rule.choose([A, B], 200.0)
    rule.opened(200.0)
    rule.heard(200.0 + HEALTHY_S)
    assert rule.attempt == 0
    assert rule.ended(300.0, 0.5) == backoff_s(0, min_s=MIN_S, max_s=MAX_S, jitter=0.5)


def test_a_session_that_dies_young_does_not_reset_the_backoff() -> None:
    """A core that accepts the link then drops it (or refuses the edge) is no healthy session:
    the backoff keeps growing, so the edge never spins on it."""
    rule = failover()
    dials(rule, [A, B], 3)
    rule.choose([A, B], 200.0)
    rule.opened(200.0)
    rule.heard(200.0 + HEALTHY_S - 0.01)
    rule.ended(200.0 + HEALTHY_S - 0.01, 0.5)
    assert rule.attempt == 4


def test_hearing_the_core_before_the_link_opens_proves_nothing() -> None:
    rule = failover()
    dials(rule, [A], 2)
    rule.choose([A], 200.0)
    rule.heard(1000.0)
    assert rule.attempt == 2


def test_dials_are_at_least_the_dial_gap_apart_whatever_the_jitter() -> None:
    rule = failover()
    now, starts = 0.0, []
    for _ in range(50):  # a core that refuses at once, jitter drawing 0 every time
        rule.choose([A, B], now)
        starts.append(now)
        now += rule.ended(now, 0.0)
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert min(gaps) == pytest.approx(MIN_DIAL_GAP_S)
    assert (len(starts) - 1) / (starts[-1] - starts[0]) <= 1 / MIN_DIAL_GAP_S + 1e-9


def test_a_dial_that_took_longer_than_the_gap_waits_only_the_backoff() -> None:
    rule = failover()
    rule.choose([A, B], 0.0)
    assert rule.ended(5.0, 0.5) == backoff_s(0, min_s=MIN_S, max_s=MAX_S, jitter=0.5)


# --- the setting -------------------------------------------------------------------------------


def test_several_urls_separated_by_commas() -> None:
    targets = parse(" http://127.0.0.1:8081/ , https://core-b.example.com,wss://[::1]:9/base")
    assert [(t.url, t.host, t.port, t.link_url) for t in targets] == [
        ("http://127.0.0.1:8081", "127.0.0.1", 8081, "ws://127.0.0.1:8081/link"),
        ("https://core-b.example.com", "core-b.example.com", 443, "wss://core-b.example.com/link"),
        ("wss://[::1]:9/base", "::1", 9, "wss://[::1]:9/base/link"),
    ]


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("", "must be an http(s) URL"),
        ("http://a:1,", "an empty entry between commas, got 'http://a:1,'"),
        ("http://a:1,,http://b:1", "an empty entry"),
        ("http://a:1,core.internal:8081", "got 'core.internal:8081'"),
        ("ftp://a", "got 'ftp://a'"),
        ("http://:8081", "got 'http://:8081'"),
        ("http://a:99999", "bad port"),
        ("http://a:0", "bad port"),
        ("http://a:x", "bad port"),
        ("http://user:pw@a:1", "without credentials"),
        ("http://a:1/?x=1", "without credentials, query"),
        ("http://a:1,http://a:1/", "names 'http://a:1' twice"),
        (",".join(f"http://a:{i + 1}" for i in range(MAX_CORE_URLS + 1)), "at most 16"),
    ],
)
def test_a_bad_core_url_is_refused_at_start_with_a_clear_message(value: str, says: str) -> None:
    from edge_node.settings import EdgeSettings

    with pytest.raises(ConfigError) as info:
        from_environ(EdgeSettings, {"LIGHTCONE_CORE_URL": value})
    assert "'LIGHTCONE_CORE_URL'" in str(info.value)
    assert says in str(info.value)


# --- resolution --------------------------------------------------------------------------------


class FakeDns:
    """A resolver passed in: names to addresses, and the calls it got."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.calls: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return self.table[host]


def test_a_name_that_resolves_to_several_addresses_gives_one_candidate_each() -> None:
    dns = FakeDns({"lightcone-core.internal": ["fdaa:0:1::3", "fdaa:0:1::4", "10.0.0.5"]})
    found, problems = resolve(parse("http://lightcone-core.internal:8081"), dns)
    assert problems == []
    assert dns.calls == [("lightcone-core.internal", 8081)]
    assert [c.address for c in found] == ["fdaa:0:1::3", "fdaa:0:1::4", "10.0.0.5"]
    assert [c.name for c in found] == [
        "http://[fdaa:0:1::3]:8081",
        "http://[fdaa:0:1::4]:8081",
        "http://10.0.0.5:8081",
    ]
    assert {c.target.link_url for c in found} == {"ws://lightcone-core.internal:8081/link"}


def test_each_address_is_a_candidate_once_in_the_resolvers_order() -> None:
    dns = FakeDns({"core": ["::1", "127.0.0.1", "::1"]})
    found, _ = resolve(parse("http://core:1,http://127.0.0.1:2"), dns)
    assert [c.name for c in found] == ["http://[::1]:1", "http://127.0.0.1:1", "http://127.0.0.1:2"]


def test_an_ip_literal_is_not_resolved_and_keeps_its_url() -> None:
    found, _ = resolve(parse("http://[::1]:8081/"), no_names)
    assert [(c.address, c.name) for c in found] == [("::1", "http://[::1]:8081")]


def test_a_name_that_does_not_resolve_is_skipped_and_said() -> None:
    dns = FakeDns({"b": []})
    found, problems = resolve(parse("http://a:1,http://b:2,http://127.0.0.1:3"), dns)
    assert [c.name for c in found] == ["http://127.0.0.1:3"]
    assert problems[0].startswith("cannot resolve 'a' of http://a:1: ")
    assert problems[1] == "'b' of http://b:2 has no address"


def test_resolution_is_redone_for_each_dial_and_the_rule_follows_the_answer() -> None:
    """A core Machine replaced: the new address is untried, so it is dialled before the
    failed one."""
    dns = FakeDns({"core.internal": ["fdaa::1", "fdaa::2"]})
    targets = parse("http://core.internal:8081")
    rule = failover()
    first = rule.choose(resolve(targets, dns)[0], 0.0)
    assert first is not None and first.address == "fdaa::1"
    rule.ended(0.0, 0.5)
    dns.table["core.internal"] = ["fdaa::3", "fdaa::1"]
    second = rule.choose(resolve(targets, dns)[0], 1.0)
    assert second is not None and second.address == "fdaa::3"
    assert len(dns.calls) == 2


def test_candidates_are_bounded() -> None:
    dns = FakeDns({"big": [f"10.0.0.{i}" for i in range(MAX_CANDIDATES + 5)]})
    found, problems = resolve(parse("http://big:1"), dns)
    assert len(found) == MAX_CANDIDATES
    assert problems == [f"5 core addresses left out (at most {MAX_CANDIDATES})"]


def test_the_system_resolver_gives_ipv6_and_ipv4_addresses() -> None:
    addresses = system_resolver("127.0.0.1", 80)
    assert addresses and set(addresses) == {"127.0.0.1"}
