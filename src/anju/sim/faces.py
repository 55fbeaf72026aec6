"""Synthetic faces for the simulator (模拟人脸): feature vectors that behave like dlib's.

Every simulated person — resident, courier, guest, loiterer, watched person — has a stable
*identity* vector fixed by the simulation's namespace (the community code) and a key such as
``person:42`` or ``courier:003``; every sighting is a noisy version of it, the way two
photographs of one face differ. Vectors carry the model name :data:`MODEL`, so the node
never compares them with vectors of a real encoder.

Calibration (to the real photographs of ``fixtures/faces``, measured with dlib's ResNet:
same person 0.04–0.53, median 0.34; different people 0.66–1.03, median 0.84). Random unit
vectors in 128 dimensions lie ~1.41 apart, so faces need a common part. In ``d = 128``:

* identity ``c = α·m + β·u``: ``m`` one unit vector shared by everyone (dlib's vectors have
  such a mean, of norm 1.31 in vectors of norm ~1.42), ``u`` the person's own unit
  direction, orthogonal to ``m``; ``α² + β² = 1`` keeps identities on the unit sphere.
* sighting ``x = c + σ·n``, ``n ~ N(0, I/d)`` (so ``|n| ≈ 1`` and two draws are nearly
  orthogonal to each other and to every ``u``); ``σ`` is the capture's quality, drawn per
  sighting from ``N(0.24, 0.05)`` clipped to [0.02, 0.40].
* same person: ``|σ₁n₁ − σ₂n₂| ≈ √(σ₁² + σ₂²)``; a median of 0.34 needs
  ``σ ≈ 0.34 / √2 = 0.240``. The spread of ``σ`` gives the range: 0.15–0.55 over 2,400
  pairs, 98 % within 0.22–0.49 (an exact duplicate photo, the fixtures' 0.04, is not
  simulated).
* different people: ``|β(u₁ − u₂) + σ₁n₁ − σ₂n₂| ≈ √(2β² + σ₁² + σ₂²)``; a median of 0.84
  needs ``2β² = 0.84² − 2·0.24² = 0.590``, so ``β = 0.543`` and ``α = √(1 − β²) = 0.840``.
  ``cos(u₁, u₂)`` varies by ``±1/√127 ≈ 0.09``, which with the noise gives 0.64–1.09 over
  80,000 pairs, 98 % within 0.73–0.96: none within the threshold 0.6.

``tests/test_sim_faces.py`` checks these distributions; ``bench/faces_sim.py`` prints them
and the purity of stranger clustering on simulated sightings. Everything is deterministic:
a vector is a function of (namespace, key, salt), the same in every process.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections import Counter, defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from sqlalchemy import select

if TYPE_CHECKING:
    from anju.core.context import Ctx
    from anju.faces.service import FaceService
    from anju.sim.life import World

log = logging.getLogger(__name__)

MODEL = "anju-sim-v1"  # the model name every simulated vector is tagged with
DIM = 128
DECIMALS = 4  # features on the wire are rounded: ~1 kB a capture, errors of 5e-5

Vector = npt.NDArray[np.float64]


@dataclass(frozen=True)
class FaceParams:
    """The calibration (see the module docstring for the arithmetic)."""

    individual: float = 0.543  # β: weight of the person's own direction
    noise_mean: float = 0.240  # σ: mean sighting noise
    noise_sd: float = 0.050
    noise_min: float = 0.020
    noise_max: float = 0.400

    @property
    def shared(self) -> float:
        """α: weight of the direction everyone shares (identities are unit vectors)."""
        return math.sqrt(1.0 - self.individual**2)


CALIBRATED = FaceParams()


def _rng(*parts: object) -> np.random.Generator:
    """A numpy stream fixed by its parts (a digest, so the same in every process)."""
    text = "|".join(str(p) for p in parts)
    digest = hashlib.blake2b(text.encode(), digest_size=16).digest()
    return np.random.default_rng(int.from_bytes(digest, "big"))


def _mean_direction() -> Vector:
    """The direction every face of the model shares (a constant of the model)."""
    m = _rng(MODEL, "mean").standard_normal(DIM)
    return np.asarray(m / np.linalg.norm(m), dtype=np.float64)


class SimFaces:
    """The faces of one simulated world: identities by key, noisy sightings of them."""

    def __init__(self, namespace: str, params: FaceParams = CALIBRATED) -> None:
        self.namespace = namespace
        self.params = params
        self._mean = _mean_direction()
        self._identities: dict[str, Vector] = {}

    def identity(self, key: str) -> Vector:
        """The person's true face: a unit vector, the same for the same key."""
        found = self._identities.get(key)
        if found is not None:
            return found
        u = _rng(MODEL, self.namespace, "identity", key).standard_normal(DIM)
        u -= u.dot(self._mean) * self._mean  # orthogonal to the shared direction
        u /= np.linalg.norm(u)
        vector = self.params.shared * self._mean + self.params.individual * u
        self._identities[key] = vector
        return vector

    def sighting(self, key: str, salt: str) -> Vector:
        """One capture of the person: the identity plus noise of the capture's quality;
        the same (key, salt) always gives the same vector."""
        p = self.params
        rng = _rng(MODEL, self.namespace, "sighting", key, salt)
        sigma = float(np.clip(rng.normal(p.noise_mean, p.noise_sd), p.noise_min, p.noise_max))
        noise = rng.standard_normal(DIM) / math.sqrt(DIM)
        return self.identity(key) + sigma * noise

    def feature(self, key: str, salt: str) -> list[float]:
        """A sighting as a device sends it (``data.feature``): floats rounded to 4 places."""
        return wire_vector(self.sighting(key, salt))

    def template(self, key: str) -> list[float]:
        """The person's enrolment vector (their registration photo)."""
        return self.feature(key, "registration")


def wire_vector(vector: Vector) -> list[float]:
    """A vector as plain floats with :data:`DECIMALS` places."""
    return [round(float(v), DECIMALS) for v in vector]


def person_key(person_id: int) -> str:
    """The identity key of a registered person."""
    return f"person:{person_id}"


def track_id(*parts: object) -> str:
    """A capture's track id, as a camera numbers the faces it sees: unique per capture,
    saying nothing about who it is (the node must recognise the face itself)."""
    text = "|".join(str(p) for p in parts)
    return "T" + hashlib.blake2b(text.encode(), digest_size=6).hexdigest().upper()


def distance(a: Sequence[float] | Vector, b: Sequence[float] | Vector) -> float:
    """Euclidean distance, as face_recognition measures it."""
    return float(np.linalg.norm(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)))


# --- stranger clustering, measured ----------------------------------------------------------


def cluster_online(
    vectors: Sequence[Sequence[float] | Vector],
    threshold: float = 0.55,
    keep: int = 5,
    spacing: float = 0.25,
) -> list[int]:
    """Cluster sightings one by one, as the node does with unknown faces: each joins the
    cluster with the nearest representative within ``threshold`` or starts a new one; a
    cluster keeps up to ``keep`` representatives, a sighting becoming one only when farther
    than ``spacing`` from those it has. Returns a cluster number per sighting (a reference
    for :func:`cluster_quality`, independent of the node's code)."""
    dim = len(vectors[0]) if len(vectors) else DIM
    reps = np.empty((max(len(vectors), 1), dim), dtype=np.float64)
    owner: list[int] = []
    held: list[int] = []  # representatives per cluster
    out: list[int] = []
    for v in vectors:
        x = np.asarray(v, dtype=np.float64)
        best, nearest = -1, math.inf
        if owner:
            d = np.linalg.norm(reps[: len(owner)] - x, axis=1)
            i = int(np.argmin(d))
            if d[i] <= threshold:
                best, nearest = owner[i], float(d[i])  # its nearest representative too
        if best < 0:
            best = len(held)
            held.append(0)
        if held[best] < keep and nearest > spacing:
            reps[len(owner)] = x
            owner.append(best)
            held[best] += 1
        out.append(best)
    return out


@dataclass(frozen=True)
class ClusterQuality:
    """How well clusters of sightings follow the true identities."""

    sightings: int
    identities: int
    clusters: int
    purity: float  # share of clusters whose sightings are all of one identity
    split: float  # share of identities (seen twice or more) spread over several clusters
    clusters_per_identity: float  # mean number of clusters an identity's sightings fall in

    def as_dict(self) -> dict[str, float | int]:
        """Plain figures (for ``--json`` and the docs)."""
        return {
            "sightings": self.sightings,
            "identities": self.identities,
            "clusters": self.clusters,
            "purity": round(self.purity, 4),
            "split": round(self.split, 4),
            "clusters_per_identity": round(self.clusters_per_identity, 3),
        }


def cluster_quality(truth: Sequence[Hashable], clusters: Sequence[Hashable]) -> ClusterQuality:
    """Purity and fragmentation of a clustering: ``truth[i]`` is who sighting ``i`` really
    is, ``clusters[i]`` the cluster it was put in."""
    if len(truth) != len(clusters):
        raise ValueError("truth and clusters differ in length")
    members: dict[Hashable, set[Hashable]] = defaultdict(set)
    spread: dict[Hashable, set[Hashable]] = defaultdict(set)
    for who, cluster in zip(truth, clusters, strict=True):
        members[cluster].add(who)
        spread[who].add(cluster)
    seen = Counter(truth)
    repeated = [who for who, n in seen.items() if n >= 2]
    pure = sum(1 for m in members.values() if len(m) == 1)
    return ClusterQuality(
        sightings=len(truth),
        identities=len(spread),
        clusters=len(members),
        purity=pure / len(members) if members else 1.0,
        split=(sum(1 for w in repeated if len(spread[w]) > 1) / len(repeated)) if repeated else 0.0,
        clusters_per_identity=(sum(len(c) for c in spread.values()) / len(spread))
        if spread
        else 0.0,
    )


def stranger_sightings(
    faces: SimFaces, *, recurring: int, visits: int, one_off: int
) -> tuple[list[str], list[Vector]]:
    """Unknown faces at the gates over some days, in time order: ``recurring`` people (the
    couriers) seen ``visits`` times each, ``one_off`` people (guests) seen twice (coming
    and going). Returns who each sighting really is, and the sightings."""
    order: list[tuple[float, str, str]] = []
    rng = _rng(MODEL, faces.namespace, "strangers", recurring, visits, one_off)
    for n in range(recurring):
        for v in range(visits):
            order.append((float(rng.random()), f"courier:{n:03d}", f"v{v}"))
    for n in range(one_off):
        t = float(rng.random())
        order.extend(((t, f"guest:{n:04d}", "in"), (t + 1e-4, f"guest:{n:04d}", "out")))
    order.sort()
    return [key for _, key, _ in order], [faces.sighting(key, salt) for _, key, salt in order]


def distance_samples(
    faces: SimFaces, people: int, per_person: int, prefix: str = "sample"
) -> tuple[list[float], list[float]]:
    """Same-person distances (every pair of each person's sightings) and different-person
    distances (first sightings of every pair of people), for calibration checks."""
    sightings = [
        np.stack([faces.sighting(f"{prefix}:{p}", f"s{i}") for i in range(per_person)])
        for p in range(people)
    ]
    same: list[float] = []
    for s in sightings:
        for i in range(per_person):
            for j in range(i + 1, per_person):
                same.append(float(np.linalg.norm(s[i] - s[j])))
    first = np.stack([s[0] for s in sightings])
    squared = (first**2).sum(axis=1)
    gram = squared[:, None] + squared[None, :] - 2 * first @ first.T
    upper = np.triu_indices(people, 1)
    different = np.sqrt(np.maximum(gram[upper], 0.0)).tolist()
    return same, [float(d) for d in different]


# --- enrolment ------------------------------------------------------------------------------


def enrol_people(ctx: Ctx, service: FaceService, world: World) -> int:
    """Enrol the registration face (:meth:`SimFaces.template`) of everyone registered in
    the simulated community — residents and those who moved away — who has no simulated
    face yet; returns how many were enrolled. Run before the simulator's first event, so
    the node recognises residents at the cameras from the start."""
    from anju.faces.models import FaceTemplate, OwnerKind

    people = sorted({r.person_id for r in world.residents()} | set(world.former))
    have: set[int] = set()
    for i in range(0, len(people), 500):
        chunk = people[i : i + 500]
        have.update(
            ctx.session.scalars(
                select(FaceTemplate.owner_id).where(
                    FaceTemplate.owner_kind == OwnerKind.PERSON.value,
                    FaceTemplate.model == MODEL,
                    FaceTemplate.owner_id.in_(chunk),
                )
            )
        )
    faces = SimFaces(world.community)
    added = 0
    for person_id in people:
        if person_id not in have:
            added += service.enroll_vectors(
                ctx, person_id, [faces.template(person_key(person_id))], MODEL
            )
    log.info("enrolled %d simulated faces in %s", added, world.community)
    return added
