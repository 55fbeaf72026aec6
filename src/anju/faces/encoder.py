"""Face encoder: images → face boxes and 128-d encodings (dlib's ResNet through face_recognition).

The default encoder wraps ``face_recognition`` 1.3.0: HOG detection for full frames, dlib's
ResNet model for the encoding (the weights ship in ``face_recognition_models``; nothing is
downloaded at run time). ``face_recognition`` loads its models when imported, so it is
imported lazily, once per process, under a lock; every dlib call is serialised by a lock too,
so one encoder can be shared by worker threads.

Big frames are downscaled for detection only (longest side ``max_side``, 1280 by default):
HOG time grows with the pixel count, and faces in a 4K frame are found as well at 1280. The
boxes are mapped back to the original image, and landmarks and encodings are computed there.
"""

from __future__ import annotations

import io
import logging
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

log = logging.getLogger(__name__)

MODEL_DLIB = "dlib_resnet_v1"  # stored with every vector; vectors of different models never meet
DIM_DLIB = 128
MAX_PIXELS = 40_000_000  # refuse bigger images before decoding them (decompression bombs)
MAX_SIDE = 1280  # detection works on frames no longer than this on their longest side

Vector = npt.NDArray[np.float32]
RGBImage = npt.NDArray[np.uint8]


class FaceImageError(ValueError):
    """The bytes are not a usable image; the message says why ("not an image", …)."""


@dataclass(frozen=True)
class Box:
    """A face's box in image pixels, in dlib/face_recognition order."""

    top: int
    right: int
    bottom: int
    left: int


@dataclass(frozen=True)
class DetectedFace:
    """One face found in an image: where, and its encoding (float32, shape ``(dim,)``)."""

    box: Box
    vector: Vector


class FaceEncoder(Protocol):
    """Turns images into face encodings of one model."""

    model: str
    dim: int

    def faces(self, image: bytes) -> list[DetectedFace]:
        """Detect every face and encode it; ``[]`` when there is none."""
        ...

    def encode_crop(self, image: bytes, box: Box | None = None) -> Vector:
        """Encode without detection: the whole image (or ``box`` in it) is the face."""
        ...


def decode_image(data: bytes) -> RGBImage:
    """Decode JPEG/PNG/… bytes into an RGB uint8 array, turned upright by its EXIF tag."""
    if not data:
        raise FaceImageError("not an image")
    try:
        img = Image.open(io.BytesIO(data))  # reads the header only
    except Image.DecompressionBombError:
        raise FaceImageError("image too large") from None
    except UnidentifiedImageError:
        raise FaceImageError("not an image") from None
    except Exception as exc:  # Pillow's parsers raise many types on hostile input
        raise FaceImageError("corrupt image") from exc
    width, height = img.size
    if width * height > MAX_PIXELS:
        raise FaceImageError("image too large")
    if width == 0 or height == 0:
        raise FaceImageError("corrupt image")
    try:
        img.load()
        upright = ImageOps.exif_transpose(img) or img
        rgb = upright.convert("RGB")
    except Exception as exc:  # as above: bad input must never crash a worker
        raise FaceImageError("corrupt image") from exc
    return np.asarray(rgb, dtype=np.uint8)


def distance(a: Sequence[float] | npt.ArrayLike, b: Sequence[float] | npt.ArrayLike) -> float:
    """Euclidean distance between two encodings, as face_recognition's ``face_distance``."""
    va = np.asarray(a, dtype=np.float64)
    vb = np.asarray(b, dtype=np.float64)
    if va.shape != vb.shape:
        raise ValueError(f"vectors of different shapes {va.shape} and {vb.shape}")
    return float(np.linalg.norm(va - vb))


_import_lock = threading.Lock()


def _face_recognition() -> Any:
    """Import face_recognition (which loads dlib's models) once, keeping Pillow's default."""
    with _import_lock:
        saved = ImageFile.LOAD_TRUNCATED_IMAGES
        import face_recognition

        # Its import turns on LOAD_TRUNCATED_IMAGES for the whole process, which would let
        # a truncated upload decode as a half-grey picture; uploads must be refused instead.
        ImageFile.LOAD_TRUNCATED_IMAGES = saved
        return face_recognition


def _clamp(box: Box, height: int, width: int) -> Box:
    return Box(
        top=max(box.top, 0),
        right=min(box.right, width - 1),
        bottom=min(box.bottom, height - 1),
        left=max(box.left, 0),
    )


class DlibEncoder:
    """The default :class:`FaceEncoder`: HOG detection, dlib ResNet encodings (128-d)."""

    model = MODEL_DLIB
    dim = DIM_DLIB

    def __init__(self, *, max_side: int = MAX_SIDE, upsample: int = 1, jitters: int = 1) -> None:
        # upsample=1 (face_recognition's default) finds faces down to ~40 px; 0 is 4× faster
        # and finds faces of ~80 px and up.
        self.max_side = max_side
        self.upsample = upsample
        self.jitters = jitters
        self._lock = threading.Lock()
        self._fr: Any = None

    def _lib(self) -> Any:
        if self._fr is None:
            self._fr = _face_recognition()
        return self._fr

    def locate(self, rgb: RGBImage) -> list[Box]:
        """Face boxes in ``rgb`` (HOG), detected on a copy no longer than ``max_side``."""
        fr = self._lib()
        height, width = rgb.shape[:2]
        scale = min(1.0, self.max_side / max(height, width))
        small = rgb
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            small = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR))
        with self._lock:
            found = fr.face_locations(small, number_of_times_to_upsample=self.upsample, model="hog")
        boxes = []
        for top, right, bottom, left in found:
            box = Box(
                top=math.floor(top / scale),
                right=math.ceil(right / scale),
                bottom=math.ceil(bottom / scale),
                left=math.floor(left / scale),
            )
            boxes.append(_clamp(box, height, width))
        return boxes

    def encode(self, rgb: RGBImage, boxes: Sequence[Box]) -> list[Vector]:
        """Encodings of the faces at ``boxes`` in ``rgb``."""
        if not boxes:
            return []
        fr = self._lib()
        locations = [(b.top, b.right, b.bottom, b.left) for b in boxes]
        with self._lock:
            vectors = fr.face_encodings(rgb, locations, num_jitters=self.jitters)
        return [np.asarray(v, dtype=np.float32) for v in vectors]

    def faces(self, image: bytes) -> list[DetectedFace]:
        """Detect every face in the image and encode it; ``[]`` when there is none."""
        rgb = decode_image(image)
        boxes = self.locate(rgb)
        vectors = self.encode(rgb, boxes)
        return [DetectedFace(box, v) for box, v in zip(boxes, vectors, strict=True)]

    def encode_crop(self, image: bytes, box: Box | None = None) -> Vector:
        """Encode without detection: the whole image, or ``box`` in it, is the face.

        For a device's face crop (GA/T 1400 sub-image type 11, Hikvision ``FaceRect``); crops
        with some margin around the face (10–30 %) encode best."""
        rgb = decode_image(image)
        height, width = rgb.shape[:2]
        whole = Box(top=0, right=width - 1, bottom=height - 1, left=0)
        target = whole if box is None else _clamp(box, height, width)
        if target.bottom <= target.top or target.right <= target.left:
            raise ValueError(f"empty face box {box}")
        return self.encode(rgb, [target])[0]


@cache
def dlib_encoder() -> DlibEncoder:
    """The default encoder, one per process (its models load on first use)."""
    return DlibEncoder()
