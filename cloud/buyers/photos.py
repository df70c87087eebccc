"""A document photo checked before it is kept: its size, its type by its content (the JPEG or
PNG signature, whatever name or type the upload claimed), and that it decodes as that type —
with Pillow, whose decoders also refuse decompression bombs — so that what a reviewer's
browser is sent is an image and nothing else."""

from __future__ import annotations

import io
import warnings

from PIL import Image, UnidentifiedImageError

from cloud.buyers.identity_errors import IdentityError

MAX_BYTES = 5 * 1024 * 1024
MAX_PIXELS = 40_000_000
SIGNATURES = {b"\xff\xd8\xff": ("image/jpeg", "JPEG"),
              b"\x89PNG\r\n\x1a\n": ("image/png", "PNG")}
MEDIA_TYPES = tuple(media_type for media_type, _ in SIGNATURES.values())


def check_declared(declared: str) -> None:
    """``photo_media_type`` unless the type an upload says it is (its Content-Type) is one a
    photo may be: refused before its bytes are read."""
    if declared not in MEDIA_TYPES:
        raise IdentityError("photo_media_type", allowed=", ".join(MEDIA_TYPES))


def checked_photo(data: bytes, max_bytes: int = MAX_BYTES, declared: str | None = None) -> str:
    """The media type of an acceptable photo, or a refusal: ``photo_too_large``,
    ``photo_type_refused`` (not a JPEG or PNG by its first bytes), ``photo_type_mismatch``
    (it is not the type ``declared``, when given: a PNG sent as a JPEG) or
    ``photo_unreadable`` (it does not decode as what it starts as)."""
    if len(data) > max_bytes:
        raise IdentityError("photo_too_large", limit=max_bytes)
    if declared is not None:
        check_declared(declared)
    found = next((v for sig, v in SIGNATURES.items() if data.startswith(sig)), None)
    if found is None:
        raise IdentityError("photo_type_refused")
    media_type, kind = found
    if declared is not None and declared != media_type:
        raise IdentityError("photo_type_mismatch", declared=declared, found=media_type)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[kind]) as image:
                if image.width * image.height > MAX_PIXELS:
                    raise IdentityError("photo_unreadable", kind=kind)
                image.load()          # decodes every pixel: a truncated file fails here
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError,
            Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        if isinstance(e, IdentityError):
            raise
        raise IdentityError("photo_unreadable", kind=kind) from None
    return media_type
