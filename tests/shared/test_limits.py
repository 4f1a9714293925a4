"""The listener's budgets as pure objects: connection counts, client keys, bucket tables."""

from __future__ import annotations

import pytest

from shared.limits import ConnectionBudget, client_address, client_key
from shared.ratelimit import BucketTable, TokenBucket


def test_the_global_cap_admits_up_to_max_total_and_frees_on_close() -> None:
    budget = ConnectionBudget(max_total=2, max_per_client=10)
    assert budget.open() and budget.open()
    assert not budget.open()
    budget.close(None)
    assert budget.open()
    assert budget.total == 2


def test_the_per_client_cap_counts_each_address_apart() -> None:
    budget = ConnectionBudget(max_total=10, max_per_client=2)
    for _ in range(2):
        assert budget.open() and budget.claim("192.0.2.1")
    assert budget.open() and not budget.claim("192.0.2.1")
    budget.close(None)  # the refused one held no claim
    assert budget.open() and budget.claim("192.0.2.2")  # a bystander
    budget.close("192.0.2.1")
    assert budget.held_by("192.0.2.1") == 1
    assert budget.open() and budget.claim("192.0.2.1")


def test_counts_never_go_negative_and_idle_addresses_are_forgotten() -> None:
    budget = ConnectionBudget(max_total=1, max_per_client=1)
    budget.close("192.0.2.1")
    assert budget.total == 0 and budget.held_by("192.0.2.1") == 0
    assert budget.open() and budget.claim("192.0.2.1")
    budget.close("192.0.2.1")
    assert budget._by_client == {}  # no entry per address that ever connected


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
        ("testclient", "testclient"),
    ],
)
def test_a_client_key_is_the_ipv4_address_or_the_ipv6_64(host: str, key: str) -> None:
    assert client_key(host) == key


def test_the_client_address_comes_from_a_header_only_when_it_is_trusted() -> None:
    headers = [(b"fly-client-ip", b"203.0.113.7"), (b"x-forwarded-for", b"6.6.6.6, 198.51.100.1")]
    assert client_address("10.0.0.1", headers, None) == "10.0.0.1"
    assert client_address("10.0.0.1", headers, "Fly-Client-IP") == "203.0.113.7"
    # A list: the last entry is the one the trusted proxy wrote; the rest the client's.
    assert client_address("10.0.0.1", headers, "X-Forwarded-For") == "198.51.100.1"
    assert client_address("10.0.0.1", [], "Fly-Client-IP") == "10.0.0.1"  # header missing
    # A proxy that appends a line of its own (not merging): the last line is the proxy's.
    appended = [(b"x-forwarded-for", b"6.6.6.6"), (b"x-forwarded-for", b"198.51.100.2")]
    assert client_address("10.0.0.1", appended, "X-Forwarded-For") == "198.51.100.2"
    garbage = [(b"fly-client-ip", b"x" * 10_000)]
    assert client_address("10.0.0.1", garbage, "Fly-Client-IP") == "10.0.0.1"  # not an address


def test_a_name_that_is_no_address_is_its_own_key_cut_short() -> None:
    assert client_key("testclient") == "testclient"
    assert len(client_key("y" * 10_000)) == 64


def test_a_bucket_says_how_long_until_its_next_token() -> None:
    bucket = TokenBucket(rate=4.0, burst=1, now=0.0)
    assert bucket.wait(0.0) == 0.0
    assert bucket.allow(0.0)
    assert bucket.wait(0.0) == pytest.approx(0.25)
    assert bucket.wait(0.2) == pytest.approx(0.05)
    assert bucket.wait(1.0) == 0.0


def test_a_bucket_table_limits_each_client_apart() -> None:
    table = BucketTable(rate=1.0, burst=2)
    assert table.retry_after("a", 0.0) == 0.0
    assert table.retry_after("a", 0.0) == 0.0
    assert table.retry_after("a", 0.0) == pytest.approx(1.0)
    assert table.retry_after("b", 0.0) == 0.0  # another client is untouched
    assert table.retry_after("a", 1.0) == 0.0  # refilled at the rate


def test_a_bucket_table_keeps_at_most_max_clients_dropping_the_least_recent() -> None:
    table = BucketTable(rate=1.0, burst=1, max_clients=3)
    for client in ("a", "b", "c"):
        assert table.retry_after(client, 0.0) == 0.0
    assert table.retry_after("a", 0.0) > 0  # a is now the most recent
    assert table.retry_after("d", 0.0) == 0.0  # b goes
    assert len(table) == 3
    assert table.retry_after("a", 0.0) > 0  # a was kept: still empty
    assert table.retry_after("b", 0.0) == 0.0  # b comes back with a full bucket


def test_a_bucket_table_holds_its_bound_under_a_flood_of_addresses() -> None:
    table = BucketTable(rate=1.0, burst=1, max_clients=100)
    for n in range(10_000):
        table.retry_after(f"client-{n}", n * 0.001)
    assert len(table) == 100
