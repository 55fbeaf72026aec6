"""The face encoder on real photographs: same person matches, different people do not.

The photographs come from ageitgey/face_recognition (MIT; see ``SOURCES.md`` beside them).
They are kept in ``tests/fixtures/faces`` (found by ``tests/face_photos.py``).
"""

from __future__ import annotations

import io
import threading
from functools import cache

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from anju.faces.encoder import (
    MODEL_DLIB,
    Box,
    DetectedFace,
    DlibEncoder,
    FaceImageError,
    decode_image,
    distance,
    dlib_encoder,
)
from tests.face_photos import FIXTURES, needs_photos

THRESHOLD = 0.6
pytestmark = needs_photos


def photo(name: str) -> bytes:
    assert FIXTURES is not None
    return (FIXTURES / name).read_bytes()


@cache
def faces_in(name: str) -> tuple[DetectedFace, ...]:
    """Detection is slow (0.1–1 s a photo): each photograph is encoded once per run."""
    return tuple(dlib_encoder().faces(photo(name)))


def only_face(name: str) -> DetectedFace:
    found = faces_in(name)
    assert len(found) == 1, f"{name}: {len(found)} faces"
    return found[0]


def jpeg(rgb: np.ndarray, **save: object) -> bytes:
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="JPEG", quality=92, **save)
    return out.getvalue()


def test_default_encoder_is_dlib_128d_and_shared() -> None:
    encoder = dlib_encoder()
    assert encoder.model == MODEL_DLIB
    assert encoder.dim == 128
    assert dlib_encoder() is encoder


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("obama/obama.jpg", "obama/obama2.jpg"),
        ("obama/obama-480p.jpg", "obama/obama4.jpg"),
        ("biden/biden.jpg", "biden/biden2.jpg"),
        ("kit_harington/john1.jpeg", "kit_harington/john2.jpeg"),
        ("rose_leslie/rose1.jpg", "rose_leslie/rose2.jpg"),
        ("alex_lacamoire/alex1.png", "alex_lacamoire/alex2.jpg"),
    ],
)
def test_same_person_matches(a: str, b: str) -> None:
    fa, fb = only_face(a), only_face(b)
    assert fa.vector.dtype == np.float32
    assert fa.vector.shape == (128,)
    assert distance(fa.vector, fb.vector) < THRESHOLD


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("obama/obama.jpg", "biden/biden.jpg"),
        ("kit_harington/john1.jpeg", "rose_leslie/rose1.jpg"),
        ("alex_lacamoire/alex1.png", "lin_manuel_miranda/lin1.png"),
        ("obama/obama2.jpg", "kit_harington/john2.jpeg"),
        ("biden/biden2.jpg", "alex_lacamoire/alex2.jpg"),
    ],
)
def test_different_people_do_not_match(a: str, b: str) -> None:
    assert distance(only_face(a).vector, only_face(b).vector) > THRESHOLD


def test_group_photos_yield_several_faces_each_recognisable() -> None:
    group = faces_in("groups/obama_and_biden.jpg")
    assert len(group) >= 2
    for person in ("obama/obama.jpg", "biden/biden.jpg"):
        nearest = min(distance(only_face(person).vector, f.vector) for f in group)
        assert nearest < THRESHOLD, person

    couple = faces_in("groups/kit_with_rose.jpg")
    assert len(couple) == 2
    kit, rose = only_face("kit_harington/john1.jpeg"), only_face("rose_leslie/rose1.jpg")
    # Each of the two is one of them, and not both the same one.
    matched = {
        "kit" if distance(f.vector, kit.vector) < distance(f.vector, rose.vector) else "rose"
        for f in couple
    }
    assert matched == {"kit", "rose"}
    for f in couple:
        assert min(distance(f.vector, kit.vector), distance(f.vector, rose.vector)) < THRESHOLD


def test_boxes_lie_inside_the_image() -> None:
    rgb = decode_image(photo("groups/obama_and_biden.jpg"))
    height, width = rgb.shape[:2]
    for face in faces_in("groups/obama_and_biden.jpg"):
        b = face.box
        assert 0 <= b.left < b.right < width
        assert 0 <= b.top < b.bottom < height


def test_big_frames_are_detected_downscaled_and_boxes_mapped_back() -> None:
    # biden.jpg is 970×2204: the default detects on a 1280-long copy.
    downscaled = only_face("biden/biden.jpg")
    full = DlibEncoder(max_side=4000).faces(photo("biden/biden.jpg"))
    assert len(full) == 1
    a, b = downscaled.box, full[0].box
    inter = max(0, min(a.right, b.right) - max(a.left, b.left)) * max(
        0, min(a.bottom, b.bottom) - max(a.top, b.top)
    )
    union = (a.right - a.left) * (a.bottom - a.top) + (b.right - b.left) * (b.bottom - b.top)
    assert inter / (union - inter) > 0.6  # the same face, in original-image pixels
    assert distance(downscaled.vector, full[0].vector) < 0.15


def test_encode_crop_of_a_detected_face_is_close_to_its_detected_encoding() -> None:
    name = "obama/obama2.jpg"
    detected = only_face(name)
    rgb = decode_image(photo(name))
    # The box itself in the whole image: the very same computation.
    same = dlib_encoder().encode_crop(photo(name), detected.box)
    assert distance(same, detected.vector) < 1e-4
    # A device-style crop: the box with a 15 % margin, sent as its own JPEG.
    b = detected.box
    mh, mw = (b.bottom - b.top) * 0.15, (b.right - b.left) * 0.15
    crop = rgb[
        max(0, int(b.top - mh)) : int(b.bottom + mh), max(0, int(b.left - mw)) : int(b.right + mw)
    ]
    vector = dlib_encoder().encode_crop(jpeg(np.ascontiguousarray(crop)))
    assert vector.dtype == np.float32
    assert vector.shape == (128,)
    assert distance(vector, detected.vector) < 0.25
    # …and it is still Obama, not Biden.
    assert distance(vector, only_face("obama/obama.jpg").vector) < THRESHOLD
    assert distance(vector, only_face("biden/biden.jpg").vector) > THRESHOLD


def test_encode_crop_refuses_an_empty_box() -> None:
    with pytest.raises(ValueError, match="empty face box"):
        dlib_encoder().encode_crop(photo("obama/obama-480p.jpg"), Box(10, 10, 10, 10))


def test_an_image_without_a_face_yields_none() -> None:
    y, x = np.mgrid[0:360, 0:640]
    gradient = np.stack([x % 256, y % 256, (x + y) % 256], axis=-1).astype(np.uint8)
    assert dlib_encoder().faces(jpeg(gradient)) == []


def test_exif_orientation_is_applied() -> None:
    upright = decode_image(photo("obama/obama-480p.jpg"))
    # Store the pixels turned a quarter, with the EXIF tag that says how to turn them back.
    turned = np.ascontiguousarray(np.rot90(upright, k=1))  # stored a quarter anticlockwise
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation 6: "turn 90° clockwise to view"
    data = jpeg(turned, exif=exif)
    decoded = decode_image(data)
    assert decoded.shape == upright.shape
    assert np.abs(decoded.astype(int) - upright.astype(int)).mean() < 5  # JPEG loss only
    found = dlib_encoder().faces(data)
    assert len(found) == 1
    assert distance(found[0].vector, only_face("obama/obama-480p.jpg").vector) < 0.2


@pytest.mark.parametrize("data", [b"", b"hello, not a picture", b"%PDF-1.4\n" + bytes(200)])
def test_not_an_image_is_refused(data: bytes) -> None:
    with pytest.raises(FaceImageError, match="not an image"):
        decode_image(data)
    with pytest.raises(FaceImageError, match="not an image"):
        dlib_encoder().faces(data)


def test_truncated_jpeg_is_refused_even_after_face_recognition_loaded() -> None:
    # face_recognition turns on Pillow's LOAD_TRUNCATED_IMAGES when imported; the encoder
    # must undo that, or a half-received upload would decode as a half-grey picture.
    dlib_encoder().faces(photo("obama/obama-480p.jpg"))
    data = photo("obama/obama.jpg")
    with pytest.raises(FaceImageError, match="corrupt image"):
        dlib_encoder().faces(data[: len(data) // 2])
    with pytest.raises(FaceImageError, match="corrupt image"):
        dlib_encoder().encode_crop(data[: len(data) // 3])


def test_garbled_jpeg_body_is_refused() -> None:
    data = bytearray(photo("obama/obama-480p.jpg"))
    data[600:] = bytes(len(data) - 600)  # header intact, the compressed body zeroed
    with pytest.raises(FaceImageError):
        decode_image(bytes(data))


def _small_images() -> list[bytes]:
    rgb = np.asarray(Image.new("RGB", (48, 32), (200, 120, 40)))
    exif = Image.Exif()
    exif[0x0112] = 6
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="PNG")
    return [jpeg(rgb), jpeg(rgb, exif=exif), out.getvalue()]


SMALL_IMAGES = _small_images()


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow's notes on broken EXIF
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    which=st.integers(min_value=0, max_value=len(SMALL_IMAGES) - 1),
    edits=st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), max_size=12),
    cut=st.one_of(st.none(), st.integers(min_value=0)),
)
def test_mangled_images_decode_or_raise_face_image_error(
    which: int, edits: list[tuple[int, int]], cut: int | None
) -> None:
    data = bytearray(SMALL_IMAGES[which])
    for at, value in edits:
        data[at % len(data)] = value
    if cut is not None:
        data = data[: cut % len(data)]
    try:
        rgb = decode_image(bytes(data))
    except FaceImageError:
        return
    assert rgb.ndim == 3 and rgb.shape[2] == 3 and rgb.dtype == np.uint8


def test_an_enormous_image_is_refused_before_decoding() -> None:
    out = io.BytesIO()
    Image.new("L", (8000, 6000)).save(out, format="PNG")  # 48 MP, a few kB compressed
    with pytest.raises(FaceImageError, match="image too large"):
        decode_image(out.getvalue())


def test_png_with_alpha_and_greyscale_decode_to_rgb() -> None:
    for mode in ("RGBA", "L", "P"):
        out = io.BytesIO()
        Image.new(mode, (32, 24)).save(out, format="PNG")
        rgb = decode_image(out.getvalue())
        assert rgb.shape == (24, 32, 3)
        assert rgb.dtype == np.uint8


def test_distance_is_euclidean_and_checks_shapes() -> None:
    assert distance([0.0, 3.0], [4.0, 0.0]) == pytest.approx(5.0)
    with pytest.raises(ValueError):
        distance([0.0, 1.0], [0.0, 1.0, 2.0])


def test_one_encoder_is_safe_to_share_between_threads() -> None:
    data = photo("kit_harington/john2.jpeg")
    expected = only_face("kit_harington/john2.jpeg")
    results: list[list[DetectedFace]] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            results.append(dlib_encoder().faces(data))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 3
    for found in results:
        assert len(found) == 1
        assert found[0].box == expected.box
        assert distance(found[0].vector, expected.vector) < 1e-5
