"""What an upload really is: decided from its first bytes, never from its name or header."""

from __future__ import annotations

import pytest

from chat_message.attachments.service import _clean_name, download_headers
from chat_message.attachments.sniff import sniff

PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452") + b"\x00" * 32
ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"\x02\x00\x3e\x00\x01\x00\x00\x00" + b"\x00" * 40


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (PNG, "image/png"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 32, "image/jpeg"),
        (b"GIF89a" + b"\x00" * 32, "image/gif"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "application/pdf"),
        (b"just a note\nwith two lines\n", "text/plain"),
        ("grüße, 你好".encode(), "text/plain"),
    ],
)
def test_allowed_kinds_are_recognised(head: bytes, expected: str) -> None:
    assert sniff(head) == expected


@pytest.mark.parametrize(
    "head",
    [
        pytest.param(ELF, id="elf-executable"),
        pytest.param(b"MZ\x90\x00" + b"\x00" * 60, id="windows-executable"),
        pytest.param(b"PK\x03\x04" + b"\x00" * 60, id="zip"),
        pytest.param(b"text with a \x00 byte", id="nul-byte"),
        pytest.param(b"caf\xe9 latin-1 \xe9\xe9 not utf-8", id="not-utf8"),
        pytest.param(b"", id="empty"),
    ],
)
def test_everything_else_is_refused(head: bytes) -> None:
    assert sniff(head) is None


def test_text_cut_inside_a_multibyte_character_is_still_text() -> None:
    # The sniffed sample is the first 8 KiB, which can end halfway through "你".
    sample = ("a" * 10 + "你").encode()[:-1]
    assert sniff(sample) == "text/plain"


def test_invalid_utf8_before_the_end_is_not_text() -> None:
    assert sniff(b"\xe4\xbd" + b"a" * 20) is None


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\evil.png", "evil.png"),
        ("bell\x07and\nnewline.txt", "bellandnewline.txt"),
        ("", "file"),
        (None, "file"),
        ("   ", "file"),
        ("x" * 400 + ".png", "x" * 255),
    ],
)
def test_file_names_are_cleaned(given: str | None, expected: str) -> None:
    assert _clean_name(given) == expected


def test_media_is_shown_inline_and_anything_else_downloaded() -> None:
    image = download_headers({"content_type": "image/png", "size": 12, "name": "a b.png"})
    assert image["Content-Disposition"] == "inline; filename*=UTF-8''a%20b.png"
    assert image["Content-Length"] == "12"
    assert image["X-Content-Type-Options"] == "nosniff"
    pdf = download_headers({"content_type": "application/pdf", "size": 1, "name": "r\u00e9.pdf"})
    assert pdf["Content-Disposition"] == "attachment; filename*=UTF-8''r%C3%A9.pdf"
    text = download_headers({"content_type": "text/plain", "size": 1, "name": "x.html"})
    assert text["Content-Disposition"].startswith("attachment;")
