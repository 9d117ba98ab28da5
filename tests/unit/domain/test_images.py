"""Images: magic-byte sniffing, strict data: URL decoding, size limits (llmops.domain.images)."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmops.domain.errors import BadRequestError
from llmops.domain.images import (
    DEFAULT_MAX_IMAGE_BYTES,
    image_from_bytes,
    is_remote_url,
    media_type_of,
    parse_data_url,
    sniff_media_type,
)

PARAM = "messages[0].content[0].image_url"
SAMPLES = {
    "image/png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    "image/jpeg": b"\xff\xd8\xff\xdb\x00\x43",
    "image/gif": b"GIF87a\x01\x00\x01\x00",
    "image/webp": b"RIFF\x24\x00\x00\x00WEBPVP8 ",
}


def _url(data: bytes, media_type: str) -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


@pytest.mark.parametrize(("media_type", "data"), SAMPLES.items())
def test_each_supported_type_is_sniffed_and_parsed(media_type: str, data: bytes) -> None:
    assert sniff_media_type(data) == media_type
    image = parse_data_url(_url(data, media_type), max_bytes=1000, param=PARAM)
    assert (image.media_type, image.data, image.cache_point) == (media_type, data, False)


@pytest.mark.parametrize(
    "data", [b"", b"\x89PNG", b"GIF88a", b"RIFF\x00\x00\x00\x00WAVE", b"<svg xmlns=", b"BM\x00\x00", b"%PDF-"]
)
def test_other_bytes_are_not_images(data: bytes) -> None:
    assert sniff_media_type(data) is None


def test_declared_type_spellings() -> None:
    assert media_type_of("IMAGE/PNG; charset=binary") == "image/png"
    assert media_type_of("image/jpg") == "image/jpeg"
    assert media_type_of("image/svg+xml") is None
    assert media_type_of("") is None


def test_jpg_alias_in_a_data_url() -> None:
    assert parse_data_url(_url(SAMPLES["image/jpeg"], "image/jpg"), max_bytes=100, param=PARAM).format == "jpeg"


def test_declared_and_sniffed_types_must_agree() -> None:
    with pytest.raises(BadRequestError, match="declared as image/png but its bytes are image/gif") as caught:
        parse_data_url(_url(SAMPLES["image/gif"], "image/png"), max_bytes=100, param=PARAM)
    assert caught.value.param == PARAM


def test_size_is_checked_on_the_encoded_length_and_on_the_bytes() -> None:
    data = SAMPLES["image/png"] + b"\0" * 100
    for limit in (10, len(data) - 1):
        with pytest.raises(BadRequestError) as caught:
            parse_data_url(_url(data, "image/png"), max_bytes=limit, param=PARAM)
        assert str(limit) in caught.value.message
    assert parse_data_url(_url(data, "image/png"), max_bytes=len(data), param=PARAM).data == data


def test_an_oversized_payload_is_refused_without_decoding() -> None:
    # 10 MB of characters that are not even base64: refused on the length alone.
    with pytest.raises(BadRequestError, match="larger than"):
        parse_data_url("data:image/png;base64," + "!" * 10_000_000, max_bytes=DEFAULT_MAX_IMAGE_BYTES, param=PARAM)


@pytest.mark.parametrize(
    "url",
    [
        "data:image/png;base64,iVBORw0KGgo",  # unpadded
        "data:image/png;base64,iVBO Rw0K",  # whitespace
        "data:image/png;base64,iVBO\nRw0K",
        "data:image/png;base64,iVB-Rw0_",  # URL-safe alphabet
        "data:image/png;base64,iV==Rw0K",  # padding in the middle
        "data:image/png;base64,ïVBORw0K",
        "data:image/png,iVBORw0K",  # percent-encoded, not base64
        "data:image/png;base64",
        "data:;base64,iVBORw0K",
        "https://example.com/a.png",
    ],
)
def test_strict_decoding(url: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        parse_data_url(url, max_bytes=1000, param=PARAM)
    assert caught.value.param == PARAM


def test_cache_point_is_carried() -> None:
    assert parse_data_url(
        _url(SAMPLES["image/png"], "image/png"), max_bytes=100, param=PARAM, cache_point=True
    ).cache_point


def test_image_from_bytes_checks_the_served_type() -> None:
    assert image_from_bytes(SAMPLES["image/webp"], "image/webp", max_bytes=100, param=PARAM).format == "webp"
    with pytest.raises(BadRequestError):
        image_from_bytes(SAMPLES["image/webp"], "text/html", max_bytes=100, param=PARAM)
    with pytest.raises(BadRequestError):
        image_from_bytes(b"", "image/png", max_bytes=100, param=PARAM)


def test_remote_urls() -> None:
    assert is_remote_url("https://x") and is_remote_url("HTTP://x")
    assert not is_remote_url("data:image/png;base64,") and not is_remote_url("file:///x") and not is_remote_url("x")


_base64ish = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_ \n%;,:", max_size=200
)
_headers = st.sampled_from(
    [
        "data:image/png;base64,",
        "data:image/jpeg;base64,",
        "data:image/png,",
        "data:;base64,",
        "data:image/gif;charset=x;base64,",
        "data:",
        "",
    ]
)


@settings(max_examples=400, deadline=None)
@given(header=_headers, payload=st.one_of(_base64ish, st.text(max_size=200)), limit=st.integers(1, 300))
def test_the_decoder_never_raises_anything_but_a_400(header: str, payload: str, limit: int) -> None:
    try:
        image = parse_data_url(header + payload, max_bytes=limit, param=PARAM)
    except BadRequestError as error:
        assert error.param == PARAM and error.status == 400
    else:
        assert len(image.data) <= limit and sniff_media_type(image.data) == image.media_type


@settings(max_examples=300, deadline=None)
@given(
    media_type=st.sampled_from(sorted(SAMPLES)),
    tail=st.binary(max_size=100),
    declared=st.sampled_from([*SAMPLES, "image/jpg", "text/plain", "image/svg+xml"]),
)
def test_real_images_decode_exactly_or_are_refused_as_mislabelled(media_type: str, tail: bytes, declared: str) -> None:
    data = SAMPLES[media_type] + tail
    try:
        image = parse_data_url(_url(data, declared), max_bytes=1000, param=PARAM)
    except BadRequestError:
        assert media_type_of(declared) != media_type
    else:
        assert (image.data, image.media_type) == (data, media_type)
