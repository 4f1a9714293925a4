"""The device pack: every answer is the index's own at the pack's version, the folding table
folds as the edge does, the size stays in its bound, and ``GET /suggest/pack`` revalidates."""

from __future__ import annotations

import functools
import gzip
import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st
from starlette.testclient import TestClient

from edge_node.app import create_app
from edge_node.settings import EdgeSettings
from edge_node.suggest import pack
from edge_node.suggest.index import SuggestIndex
from edge_node.suggest.prepared import item
from shared import snapshot
from shared.config import from_environ
from shared.folding import ABBREVIATIONS, fold, spaced_text
from shared.protocol import Delta, TermChange, to_plain
from shared.snapshot import Entry
from tests.edge_node.test_app import unreachable_core

ENTRIES = [
    Entry("moscow", "Moscow", 900),
    Entry("mumbai", "Mumbai", 800),
    Entry("munich", "Munich", 500),
    Entry("malmo", "Malmö", 50),
    Entry("tokyo", "Tokyo", 950),
    Entry("saopaulo", "São Paulo", 700),
    Entry("sydney", "Sydney", 600),
    Entry("m", "M", 1),
]
NAMES = {
    "moscow": ["Москва"],
    "mumbai": ["Bombay"],
    "munich": ["München"],
    "tokyo": ["東京"],
}


def snapshot_of(depth: int = 8) -> snapshot.SnapshotData:
    """:data:`ENTRIES` and :data:`NAMES` at version 3, hot from 3 keys, ``depth`` deep."""
    rows = sorted(ENTRIES, key=lambda e: e.key)
    hot = snapshot.hot_lists(rows, threshold=2, depth=2 * depth)
    blob = snapshot.build(rows, version=3, hot=hot, hot_threshold=2, depth=depth, names=NAMES)
    return snapshot.parse(blob)


def index_of() -> SuggestIndex:
    return SuggestIndex(snapshot_of())


def answers(made: pack.Contents) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = json.loads(made.prefixes)
    return found


def same_as_the_index(index: SuggestIndex, made: pack.Contents) -> None:
    """Each prefix of the pack answers what the index answers; every short string built of
    the keys' and names' characters that the index answers is in the pack."""
    found = answers(made)
    for prefix, items in found.items():
        assert items == to_plain([item(e) for e in index.query(prefix, made.limit)]), prefix
    alphabet = {c for prefix in found for c in prefix} | set("abcxyz")
    for n in (1, 2):
        for chars in itertools.product(sorted(alphabet), repeat=n):
            prefix = "".join(chars)
            if prefix not in found:
                assert index.query(prefix, made.limit) == [], prefix


def test_every_answer_is_the_index_s_own() -> None:
    """Keys' and other names' prefixes of one and two characters, native scripts included;
    an exact key (``m``) and an exact name (``東京``) too."""
    index = index_of()
    made = pack.contents(index, "epoch-1", limit=3)
    assert (made.version, made.epoch, made.limit) == (3, "epoch-1", 3)
    found = answers(made)
    assert {"m", "mo", "mu", "м", "мо", "東", "東京", "bo", "s", "sa", "sy"} <= set(found)
    assert [i["term"] for i in found["m"]] == ["M", "Moscow", "Mumbai"]
    assert found["東京"] == [{"term": "Tokyo", "weight": 950, "match": "alias", "alias": "東京"}]
    assert "q" not in found and "ab" not in found  # absent: no suggestion
    same_as_the_index(index, made)


def test_after_deltas_the_pack_follows_the_overlay() -> None:
    """Deltas add a key and a name, take a term and a name away: the pack of the new version
    (built from a copy, while the original goes on) still answers as the index does."""
    index = index_of()
    index.apply(
        Delta(
            3,
            4,
            [
                TermChange("quito", "Quito", 300, ["Kitu"]),
                TermChange("moscow", None, 0),
                TermChange("mumbai", "Mumbai", 800, []),
            ],
        )
    )
    frozen = index.copy()
    index.apply(Delta(4, 5, [TermChange("quebec", "Québec", 100)]))
    made = pack.contents(frozen, "e")
    assert made.version == 4
    found = answers(made)
    assert [i["term"] for i in found["q"]] == ["Quito"]  # not Québec: after the copy
    assert found["ki"][0]["alias"] == "Kitu"
    assert "мо" not in found and "bo" not in found
    same_as_the_index(frozen, made)
    same_as_the_index(index, pack.contents(index, "e"))


def test_the_pack_of_the_default_corpus_is_within_its_size_bound() -> None:
    """128,782 terms with their other names: every one- and two-character answer, native
    scripts among them, in at most 300 KB gzipped."""
    from core_region.suggest import corpus

    columns, _ = corpus.columns(corpus.default_path())
    hot = snapshot.hot_lists(columns, threshold=64, depth=40)
    blob = snapshot.build(
        columns, version=1, hot=hot, hot_threshold=64, depth=20, names=columns.names
    )
    index = SuggestIndex(snapshot.parse(blob))
    made = pack.contents(index, "e")
    built = pack.render(made, "tolerant", 100)
    assert len(built.gzipped) <= 300_000, len(built.gzipped)
    found = answers(made)
    assert found["мо"][0]["term"] == "Moscow" and found["東京"][0]["term"] == "Tokyo"
    assert found["sa"][0]["term"] == "São Paulo"
    for prefix, items in found.items():
        assert items == to_plain([item(e) for e in index.query(prefix, made.limit)]), prefix


def page_fold(text: str, chars: dict[str, str], abbreviations: dict[str, str]) -> str | None:
    """The page's folding (``localFold`` in edge_node/static/app.js), step for step: the
    table's folding of each character (``None`` for one it lacks), then words."""
    spaced = ""
    for c in text:
        if c not in chars:
            return None
        spaced += chars[c]
    words = [w for w in spaced.split(" ") if w]
    last = len(words) - (0 if spaced.endswith(" ") else 1)
    return "".join(abbreviations.get(w, w) if i < last else w for i, w in enumerate(words))


HARD = "ÉéöÖßМоМОсква東京ﬁ\u0301\u00a0Σςǅİı\u0345\u2163ｍ"
"""Characters whose folding is not their lower case: marks, ligatures, final sigma, dotted
I, a title-case digraph, a Roman numeral, full-width letters, a no-break space."""


@functools.cache
def table() -> dict[str, str]:
    """The pack's table, for the corpus' characters and :data:`HARD` (as if a term had them)."""
    chars: dict[str, str] = json.loads(pack.contents(index_of(), "e").chars)
    return {**chars, **pack.chars({"x": [{"term": HARD, "weight": 1}]})}


TEXTS = st.text(alphabet=st.sampled_from(f"aSsTtmfe. -'_,{HARD}"), max_size=8)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=12), st.text(max_size=12))
def test_spaced_text_goes_character_by_character(a: str, b: str) -> None:
    """The table the page folds with is exact: folding's first steps map each character on
    its own, so a text's are its characters' (NFKD reorders only marks, which are dropped)."""
    assert spaced_text(a + b) == spaced_text(a) + spaced_text(b)


@settings(max_examples=500, deadline=None)
@given(TEXTS)
def test_the_page_s_folding_is_the_edge_s(text: str) -> None:
    """Where the page folds at all (every character in the table), it folds as the edge."""
    chars = table()
    got = page_fold(text, chars, ABBREVIATIONS)
    if got is not None:
        assert got == fold(text)


def test_the_table_holds_the_characters_of_the_answers_and_their_cases() -> None:
    chars: dict[str, str] = json.loads(pack.contents(index_of(), "e").chars)
    assert all(page_fold(c, chars, {}) == fold(c) for c in "Mo.СКВАöÖ東京ãÃ")
    assert page_fold("É", chars, {}) is None  # in no answer: the page asks the edge


def test_the_table_holds_only_text_the_edge_takes() -> None:
    """Control characters, lone surrogates and the like are not in it: the page asks the
    edge, which refuses them with ``bad_text``."""
    chars = pack.chars({"ab": [{"term": "A\u0000b\ud800\u202e", "weight": 1}]})
    assert "a" in chars and "A" in chars and "\u0000" not in chars
    assert "\ud800" not in chars and "\u202e" not in chars and "\x7f" not in chars


def test_etag_by_level_and_gzip() -> None:
    made = pack.contents(index_of(), "e")
    tolerant, strict = pack.render(made, "tolerant", 100), pack.render(made, "strict", 100)
    assert tolerant.etag != strict.etag and tolerant.etag.startswith('W/"')
    assert json.loads(gzip.decompress(tolerant.gzipped)) == json.loads(tolerant.body)
    assert json.loads(strict.body)["level"] == "strict"


@pytest.mark.parametrize(
    ("header", "gzip_ok"),
    [("gzip, deflate, br", True), ("br;q=1.0, gzip;q=0", False), ("*", True), ("", False)],
)
def test_accept_encoding(header: str, gzip_ok: bool) -> None:
    assert pack.accepts_gzip(header) is gzip_ok


# --- GET /suggest/pack in process --------------------------------------------------------


@pytest.fixture
def client() -> Iterator[TestClient]:
    settings = from_environ(EdgeSettings, {}, core_url=unreachable_core(), region="syd")
    with TestClient(create_app(settings)) as client:
        yield client


def test_http_pack_etag_304_and_gzip(client: TestClient) -> None:
    """503 before data; then the pack, gzipped when asked, a 304 for its ETag, and a new
    ETag once the flag's level changes."""
    refused = client.get("/suggest/pack")
    assert refused.status_code == 503 and refused.json()["error"] == "not_ready"
    feature = client.app.state.node.features["suggest"]  # type: ignore[attr-defined]
    feature.replica.load(snapshot_of(depth=5), "epoch-a")

    first = client.get("/suggest/pack", headers={"Accept-Encoding": "gzip"})
    assert first.status_code == 200
    assert first.headers["content-encoding"] == "gzip"
    assert first.headers["cache-control"] == "no-cache"
    assert first.headers["vary"] == "Accept-Encoding"
    body = first.json()
    assert body["version"] == 3 and body["epoch"] == "epoch-a" and body["level"] == "tolerant"
    assert body["fold"] == 2 and body["limit"] == 5  # the snapshot's depth bounds the limit
    assert body["prefixes"]["mo"][0]["term"] == "Moscow"
    answer = client.get("/suggest", params={"q": "Mo", "limit": 5}).json()
    assert answer["items"] == body["prefixes"]["mo"]

    tag = first.headers["etag"]
    again = client.get("/suggest/pack", headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == tag
    plain = client.get("/suggest/pack", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.json() == body

    from shared.protocol import Level

    feature.level = Level("strict")
    flipped = client.get("/suggest/pack", headers={"If-None-Match": tag})
    assert flipped.status_code == 200 and flipped.json()["level"] == "strict"
    assert flipped.headers["etag"] != tag


def test_a_pack_is_built_when_due_and_at_most_once_per_rebuild_interval() -> None:
    """The first ask builds; a new version waits for the interval; a new snapshot does not;
    a level change only renders again."""
    packs = pack.Packs(rebuild_s=1.0)
    index = index_of()
    assert packs.due(index, now=0.0)
    packs.building(index, 0.0)
    packs.built(pack.contents(index, "e"))
    assert not packs.due(index, now=0.1)  # nothing changed
    assert packs.stale("tolerant") and packs.made is not None
    packs.ready = pack.render(packs.made, "tolerant", 100)
    assert not packs.stale("tolerant") and packs.stale("strict")
    index.apply(Delta(3, 4, [TermChange("quito", "Quito", 300)]))
    assert not packs.due(index, now=0.9)  # the data moved on, but built 0.9 s ago
    assert packs.due(index, now=1.0)
    assert packs.due(index_of(), now=0.2)  # another snapshot: at once
