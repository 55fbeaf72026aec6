"""Face galleries: the exact gallery equals brute force; the ANN gallery finds the nearest."""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anju.faces.gallery import AnnGallery, Gallery, Match

DIM = 16


def brute_force(
    entries: list[tuple[str, np.ndarray]],
    probe: np.ndarray,
    k: int,
    prefix: str | None = None,
    exclude: Collection[str] = (),
) -> list[Match]:
    """Each owner's smallest distance, in float64, nearest k first — the obvious way."""
    best: dict[str, float] = {}
    for owner, vector in entries:
        if prefix is not None and not owner.startswith(prefix):
            continue
        if owner in exclude:
            continue
        d = float(np.linalg.norm(vector.astype(np.float64) - probe.astype(np.float64)))
        best[owner] = min(d, best.get(owner, np.inf))
    ranked = sorted(best.items(), key=lambda item: (item[1], item[0]))[:k]
    return [Match(owner, d) for owner, d in ranked]


def assert_same(got: list[Match], expected: list[Match]) -> None:
    assert len(got) == len(expected)
    assert [m.distance for m in got] == pytest.approx([m.distance for m in expected], abs=1e-4)
    # Owners agree except where two distances tie within the tolerance.
    for g, e in zip(got, expected, strict=True):
        if g.owner != e.owner:
            assert abs(g.distance - e.distance) < 1e-4


def random_entries(rng: np.random.Generator, n: int, owners: int) -> list[tuple[str, np.ndarray]]:
    kinds = ["p:", "w:", "s:"]
    entries = []
    for _ in range(n):
        o = int(rng.integers(owners))
        entries.append((f"{kinds[o % 3]}{o}", rng.normal(size=DIM).astype(np.float32)))
    return entries


def filled(entries: list[tuple[str, np.ndarray]]) -> Gallery:
    gallery = Gallery(DIM)
    for owner, vector in entries:
        gallery.add(owner, vector)
    return gallery


def test_exact_search_equals_brute_force_on_seeded_data() -> None:
    rng = np.random.default_rng(6)
    entries = random_entries(rng, 3000, 700)  # ~4 vectors an owner, some with one
    gallery = filled(entries)
    assert len(gallery) == 3000
    assert gallery.owners() == {o for o, _ in entries}
    for _ in range(40):
        probe = rng.normal(size=DIM).astype(np.float32)
        for k in (1, 5, 20):
            assert_same(gallery.search(probe, k), brute_force(entries, probe, k))
        for prefix in ("p:", "w:", "s:", "p:1"):
            assert_same(
                gallery.search(probe, 5, prefix=prefix),
                brute_force(entries, probe, 5, prefix=prefix),
            )
        nearest = [m.owner for m in gallery.search(probe, 3)]
        assert_same(
            gallery.search(probe, 5, exclude=nearest),
            brute_force(entries, probe, 5, exclude=nearest),
        )
        assert_same(
            gallery.search(probe, 5, prefix="s:", exclude={"s:2", "s:5", "p:1"}),
            brute_force(entries, probe, 5, prefix="s:", exclude={"s:2", "s:5", "p:1"}),
        )


vectors = st.lists(
    st.floats(min_value=-4, max_value=4, allow_nan=False, width=32), min_size=DIM, max_size=DIM
)


@settings(max_examples=60, deadline=None)
@given(
    data=st.lists(
        st.tuples(st.sampled_from(["p:1", "p:2", "w:3", "s:4", "s:5", "p:6"]), vectors),
        max_size=40,
    ),
    probe=vectors,
    k=st.integers(min_value=1, max_value=8),
    prefix=st.sampled_from([None, "p:", "s:", "w:", "x:"]),
    removed=st.sampled_from([None, "p:1", "s:4"]),
)
def test_exact_search_equals_brute_force_for_any_input(
    data: list[tuple[str, list[float]]],
    probe: list[float],
    k: int,
    prefix: str | None,
    removed: str | None,
) -> None:
    entries = [(o, np.asarray(v, dtype=np.float32)) for o, v in data]
    gallery = filled(entries)
    if removed is not None:
        assert gallery.remove(removed) == sum(o == removed for o, _ in entries)
        entries = [(o, v) for o, v in entries if o != removed]
    p = np.asarray(probe, dtype=np.float32)
    assert_same(gallery.search(p, k, prefix=prefix), brute_force(entries, p, k, prefix=prefix))


def test_an_owner_is_answered_once_with_its_best_vector() -> None:
    gallery = Gallery(2)
    gallery.add("p:1", [1.0, 0.0])
    gallery.add("p:1", [0.1, 0.0])
    gallery.add("p:1", [0.2, 0.0])
    gallery.add("p:2", [0.0, 0.5])
    found = gallery.search([0.0, 0.0], k=5)
    assert found == [Match("p:1", pytest.approx(0.1)), Match("p:2", pytest.approx(0.5))]


def test_remove_takes_every_vector_of_the_owner_and_keeps_the_rest() -> None:
    rng = np.random.default_rng(11)
    entries = random_entries(rng, 500, 60)
    gallery = filled(entries)
    for owner in ["p:3", "s:5", "w:7", "p:3", "x:never"]:
        expected = sum(o == owner for o, _ in entries)
        assert gallery.remove(owner) == expected
        entries = [(o, v) for o, v in entries if o != owner]
        assert owner not in gallery.owners()
        assert len(gallery) == len(entries)
    for _ in range(20):
        probe = rng.normal(size=DIM).astype(np.float32)
        assert_same(gallery.search(probe, 10), brute_force(entries, probe, 10))
    # Adding after removals reuses the freed slots and stays exact, prefixes included.
    for i in range(50):
        owner = f"s:{1000 + i % 7}"
        v = rng.normal(size=DIM).astype(np.float32)
        gallery.add(owner, v)
        entries.append((owner, v))
    probe = rng.normal(size=DIM).astype(np.float32)
    assert_same(gallery.search(probe, 10, prefix="s:"), brute_force(entries, probe, 10, "s:"))
    assert_same(gallery.search(probe, 10), brute_force(entries, probe, 10))


def test_add_many_is_the_same_as_adding_one_by_one() -> None:
    rng = np.random.default_rng(3)
    entries = random_entries(rng, 300, 40)
    bulk = Gallery(DIM)
    bulk.add_many([o for o, _ in entries[:200]], np.stack([v for _, v in entries[:200]]))
    for owner, v in entries[200:]:
        bulk.add(owner, v)
    probe = rng.normal(size=DIM).astype(np.float32)
    assert_same(bulk.search(probe, 7), brute_force(entries, probe, 7))


@pytest.mark.parametrize("make", [Gallery, AnnGallery])
def test_an_empty_gallery_finds_nothing(make: type[Gallery] | type[AnnGallery]) -> None:
    gallery = make(DIM)
    assert len(gallery) == 0
    assert gallery.owners() == set()
    assert gallery.search(np.zeros(DIM), k=5) == []
    assert gallery.remove("p:1") == 0


@pytest.mark.parametrize("make", [Gallery, AnnGallery])
def test_wrong_vectors_are_refused(make: type[Gallery] | type[AnnGallery]) -> None:
    gallery = make(DIM)
    with pytest.raises(ValueError):
        gallery.add("p:1", np.zeros(DIM + 1))
    with pytest.raises(ValueError):
        gallery.add("p:1", [float("nan")] * DIM)
    with pytest.raises(ValueError):
        gallery.add("p:1", ["a"] * DIM)
    gallery.add("p:1", np.zeros(DIM))
    with pytest.raises(ValueError):
        gallery.search(np.zeros(DIM - 1))
    with pytest.raises(ValueError):
        gallery.add_many(["p:2", "p:3"], np.zeros((2, DIM + 1)))
    assert len(gallery) == 1  # nothing half-added


def clustered(
    rng: np.random.Generator, clusters: int, per: int, dim: int
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Face-like data: identities spread around a common direction, sightings around them."""
    common = rng.normal(size=dim)
    common *= 1.3 / np.linalg.norm(common)
    centres = common + rng.normal(scale=0.05, size=(clusters, dim))
    owners = [f"p:{c}" for c in range(clusters) for _ in range(per)]
    vectors = np.repeat(centres, per, axis=0) + rng.normal(scale=0.02, size=(clusters * per, dim))
    return owners, vectors.astype(np.float32), centres.astype(np.float32)


def test_ann_gallery_finds_the_nearest_on_clustered_data() -> None:
    rng = np.random.default_rng(42)
    owners, vectors, centres = clustered(rng, clusters=400, per=3, dim=128)
    exact, ann = Gallery(128), AnnGallery(128, build_threads=1)  # one thread: one graph
    exact.add_many(owners, vectors)
    ann.add_many(owners, vectors)
    assert len(ann) == len(exact) == 1200
    assert ann.owners() == exact.owners()
    hits = 0
    for c in rng.choice(400, size=100, replace=False):
        probe = centres[c] + rng.normal(scale=0.02, size=128).astype(np.float32)
        e, a = exact.search(probe, 3), ann.search(probe, 3)
        assert e[0].owner == f"p:{c}"
        hits += a[0].owner == e[0].owner
        if a[0].owner == e[0].owner:
            assert a[0].distance == pytest.approx(e[0].distance, abs=1e-4)
        assert [m.distance for m in a] == sorted(m.distance for m in a), a
        assert len({m.owner for m in a}) == 3, a  # one answer per owner
    # HNSW is approximate (built on one thread, the same graph every run).
    assert hits >= 98


def test_ann_gallery_prefix_exclude_and_remove() -> None:
    rng = np.random.default_rng(5)
    owners, vectors, centres = clustered(rng, clusters=60, per=2, dim=32)
    kinds = ["p:", "w:", "s:"]
    owners = [kinds[int(o[2:]) % 3] + o[2:] for o in owners]
    ann, exact = AnnGallery(32), Gallery(32)
    for o, v in zip(owners, vectors, strict=True):
        ann.add(o, v)
        exact.add(o, v)
    probe = centres[7]  # owner "w:7"
    assert ann.search(probe, 1)[0].owner == "w:7"
    assert all(m.owner.startswith("s:") for m in ann.search(probe, 5, prefix="s:"))
    assert_same(ann.search(probe, 5, prefix="s:"), exact.search(probe, 5, prefix="s:"))
    assert (
        ann.search(probe, 1, exclude={"w:7"})[0].owner
        == exact.search(probe, 1, exclude={"w:7"})[0].owner
    )
    assert ann.search(probe, 5, prefix="x:") == []
    assert ann.remove("w:7") == 2
    assert "w:7" not in ann.owners()
    assert len(ann) == 118
    assert all(m.owner != "w:7" for m in ann.search(probe, 10))
    assert ann.search(probe, 1)[0].owner == exact.search(probe, 1, exclude={"w:7"})[0].owner
