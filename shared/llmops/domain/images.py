"""Images in chat requests: `data:` URLs decoded strictly, media types sniffed from the bytes, limits.

Pure: the API layer calls it for `image_url` content parts, and again on the bytes a remote fetch
(`ImageFetcher`) returned. What a provider receives is an `ImagePart` whose media type was read from
the bytes themselves (png, jpeg, gif or webp) and agrees with what the caller declared, so a
provider never gets a file labelled as an image that is not one.

Errors are `BadRequestError`s naming the parameter the caller sent (`messages[i].content[j].image_url`)
with a reason; they never echo the URL or any of its bytes.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from llmops.domain.chat import IMAGE_MEDIA_TYPES, ImagePart
from llmops.domain.errors import BadRequestError

__all__ = [
    "DEFAULT_MAX_IMAGES",
    "DEFAULT_MAX_IMAGE_BYTES",
    "FetchedImage",
    "ImageFetchError",
    "image_from_bytes",
    "is_remote_url",
    "media_type_of",
    "parse_data_url",
    "sniff_media_type",
]

# Bedrock's per-image limit for Anthropic Claude (3.75 MB) and its per-request image count.
DEFAULT_MAX_IMAGE_BYTES: Final = 3_932_160
DEFAULT_MAX_IMAGES: Final = 20

# Declared spellings that mean one of IMAGE_MEDIA_TYPES (browsers and some SDKs write image/jpg).
_ALIASES: Final[Mapping[str, str]] = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg"}
_PNG: Final = b"\x89PNG\r\n\x1a\n"
_GIFS: Final = (b"GIF87a", b"GIF89a")


class ImageFetchError(Exception):
    """A remote image could not be fetched. `reason` is safe to show: it never holds the URL, the
    host's addresses or anything the server sent."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class FetchedImage:
    """What an `ImageFetcher` read: the body and the server's media type (parameters removed)."""

    data: bytes = field(repr=False)
    content_type: str


def sniff_media_type(data: bytes) -> str | None:
    """The image type the magic bytes say, or None if they are none of png/jpeg/gif/webp."""
    if data.startswith(_PNG):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(_GIFS):
        return "image/gif"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def media_type_of(declared: str) -> str | None:
    """`declared` (a MIME type, maybe with parameters) as one of IMAGE_MEDIA_TYPES, or None."""
    base = declared.split(";", 1)[0].strip().lower()
    base = _ALIASES.get(base, base)
    return base if base in IMAGE_MEDIA_TYPES else None


def is_remote_url(url: str) -> bool:
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    return scheme in ("http", "https")


def image_from_bytes(data: bytes, declared: str, *, max_bytes: int, param: str, cache_point: bool = False) -> ImagePart:
    """An ImagePart from raw bytes whose declared media type must match what the bytes are."""
    if not data:
        raise BadRequestError("The image is empty.", param=param, code="invalid_value")
    if len(data) > max_bytes:
        raise BadRequestError(
            f"The image is {len(data)} bytes; at most {max_bytes} bytes are allowed per image.",
            param=param,
            code="invalid_value",
        )
    media_type = media_type_of(declared)
    if media_type is None:
        raise BadRequestError(_UNSUPPORTED, param=param, code="invalid_value")
    sniffed = sniff_media_type(data)
    if sniffed is None:
        raise BadRequestError(
            "The image's bytes are not a png, jpeg, gif or webp image.", param=param, code="invalid_value"
        )
    if sniffed != media_type:
        raise BadRequestError(
            f"The image is declared as {media_type} but its bytes are {sniffed}.", param=param, code="invalid_value"
        )
    return ImagePart(media_type=media_type, data=data, cache_point=cache_point)


_UNSUPPORTED: Final = "Unsupported image type; use image/png, image/jpeg, image/gif or image/webp."
_BASE64_ALPHABET: Final = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")


def parse_data_url(url: str, *, max_bytes: int, param: str, cache_point: bool = False) -> ImagePart:
    """A `data:<media type>;base64,<data>` URL as an ImagePart (strict base64, sniffed type, size).

    The encoded length is checked before decoding, so an oversized image costs no decoding work.
    """
    if not url[:5].lower() == "data:":
        raise BadRequestError("The image URL must be a data: URL.", param=param, code="invalid_value")
    header, comma, payload = url[5:].partition(",")
    if not comma:
        raise BadRequestError("The data: URL has no ',' before its data.", param=param, code="invalid_value")
    declared, *attributes = header.split(";")
    if not any(a.strip().lower() == "base64" for a in attributes):
        raise BadRequestError(
            "Only base64 data: URLs are supported (data:<type>;base64,...).", param=param, code="invalid_value"
        )
    if media_type_of(declared) is None:
        raise BadRequestError(_UNSUPPORTED, param=param, code="invalid_value")
    # 4 characters per 3 bytes: anything longer than this decodes to more than max_bytes.
    if len(payload) > 4 * ((max_bytes + 2) // 3):
        raise BadRequestError(
            f"The image is larger than {max_bytes} bytes, the limit per image.", param=param, code="invalid_value"
        )
    try:
        raw = payload.encode("ascii")
    except UnicodeEncodeError:
        raise BadRequestError("The image data is not valid base64.", param=param, code="invalid_value") from None
    # validate=True refuses characters outside the alphabet (b64decode would otherwise drop them);
    # the set check also refuses the URL-safe alphabet, which b64decode does not take anyway.
    if len(raw) % 4 or not _BASE64_ALPHABET.issuperset(raw):
        raise BadRequestError("The image data is not valid base64.", param=param, code="invalid_value")
    try:
        data = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequestError("The image data is not valid base64.", param=param, code="invalid_value") from None
    return image_from_bytes(data, declared, max_bytes=max_bytes, param=param, cache_point=cache_point)
