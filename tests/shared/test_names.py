"""Other names: the door for a term's names, and their part of a snapshot."""

from __future__ import annotations

import pytest

from shared import snapshot
from shared.errors import BadRequest, ProtocolError
from shared.names import MAX_NAMES, from_stored, stored, term_names
from shared.protocol import pack, unpack
from shared.snapshot import Entry


def test_names_pass_the_door_and_drop_what_adds_nothing() -> None:
    """Names are tidied; one that folds like the term or an earlier name is left out."""
    assert term_names("munich", ["  München ", "MUNICH", "Munchen", "Monaco di  Baviera"]) == (
        "München",
        "Monaco di Baviera",
    )
    assert term_names("x", []) == ()


@pytest.mark.parametrize(
    ("names", "code"),
    [
        (["ok", "bad\tname"], "bad_text"),
        (["a" * 101], "bad_name"),
        (["\u0301"], "bad_name"),  # a lone mark folds to nothing
        (["n"] * (MAX_NAMES + 1), "too_many_names"),
        (["\ufdfa" * 10], "key_too_long"),
    ],
)
def test_bad_names_are_refused_with_a_code(names: list[str], code: str) -> None:
    with pytest.raises(BadRequest) as info:
        term_names("term", names)
    assert info.value.code == code


def test_stored_form_round_trips() -> None:
    assert stored(()) is None
    assert from_stored(None) == ()
    assert from_stored(stored(("A", "Б"))) == ("A", "Б")


ENTRIES = [
    Entry("mumbai", "Mumbai", 100),
    Entry("bombarral", "Bombarral", 5),
    Entry("munich", "Munich", 50),
    Entry("moscow", "Moscow", 80),
    Entry("moscow idaho", "Moscow Idaho", 1),
]
NAMES = {
    "mumbai": ("Bombay", "Bombaim"),
    "munich": ("München", "Bombay", "Mumbai"),  # Bombay: Mumbai is heavier; Mumbai: a key
    "moscow": ("Москва", "Moskau"),
    "moscow idaho": ("Москва",),
}


def parsed(names: dict[str, tuple[str, ...]] | None = NAMES) -> snapshot.SnapshotData:
    blob = snapshot.build(ENTRIES, version=3, hot={}, hot_threshold=2, depth=2, names=names)
    return snapshot.parse(blob)


def test_snapshot_names_go_to_the_heaviest_and_never_shadow_a_key() -> None:
    names = parsed().names
    assert names is not None
    owners = {}
    for folded, name_id in names.trie.items():
        key_id, display = names.name(name_id)
        owners[folded] = (parsed().trie.restore_key(key_id), display)
    assert owners == {
        "bombay": ("mumbai", "Bombay"),
        "bombaim": ("mumbai", "Bombaim"),
        "munchen": ("munich", "München"),
        "москва": ("moscow", "Москва"),
        "moskau": ("moscow", "Moskau"),
    }


def test_the_core_reads_every_terms_names_back_as_stored() -> None:
    data = parsed()
    assert data.names is not None
    by_key = {data.trie.restore_key(k): ns for k, ns in data.names.by_term().items()}
    assert by_key == NAMES


def test_hot_name_prefixes_list_one_name_per_term_best_first() -> None:
    names = parsed().names
    assert names is not None
    owner = {}
    for prefix in ("", "b", "bomba", "mosk"):
        ids = names.ids(prefix)
        owner[prefix] = [names.trie.restore_key(i) for i in ids]
    assert sorted(owner["b"]) == ["bombaim", "bombay"]  # cold (2 names): every name
    assert owner["mosk"] == ["moskau"]
    assert [names.name(i)[0] for i in names.ids("")] == [
        parsed().trie["mumbai"],
        parsed().trie["moscow"],
    ]


def test_a_snapshot_without_names_has_no_names_field() -> None:
    """Byte for byte what it was: no names, no field (and an edge finds none)."""
    without = snapshot.build(ENTRIES, version=3, hot={}, hot_threshold=2, depth=2)
    assert snapshot.build(ENTRIES, version=3, hot={}, hot_threshold=2, depth=2, names={}) == without
    assert "names" not in unpack(without)
    assert snapshot.parse(without).names is None


def test_a_snapshot_with_names_that_disagree_is_refused() -> None:
    blob = snapshot.build(ENTRIES, version=3, hot={}, hot_threshold=2, depth=2, names=NAMES)
    raw = unpack(blob)
    raw["names"]["lists"] += "\nextra"
    with pytest.raises(ProtocolError):
        snapshot.parse(pack(raw))
    raw = unpack(blob)
    raw["names"]["terms"] = (10**6).to_bytes(4, "little") * 4
    with pytest.raises(ProtocolError):
        snapshot.parse(pack(raw))
    raw = unpack(blob)
    raw["names"]["refs"] = (7).to_bytes(4, "little") * (len(raw["names"]["refs"]) // 4)
    with pytest.raises(ProtocolError):
        snapshot.parse(pack(raw))


def test_an_edge_that_does_not_know_a_field_of_a_term_change_drops_it() -> None:
    """How today's edges read ``names`` from a newer core, and how a future field reaches
    this build: the link decodes leniently, nested fields included."""
    from shared.protocol import Delta, TermChange, decode, encode, from_wire

    wire = {
        "type": "delta",
        "from_version": 1,
        "to_version": 2,
        "terms": [{"key": "mumbai", "term": "Mumbai", "weight": 9, "later": ["x"]}],
        "hot": {},
    }
    assert from_wire(wire, strict=False) == Delta(1, 2, [TermChange("mumbai", "Mumbai", 9)])
    named = Delta(1, 2, [TermChange("mumbai", "Mumbai", 9, ["Bombay"])])
    assert decode(encode(named), strict=False) == named
