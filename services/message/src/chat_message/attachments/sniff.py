"""What a file really is, from its first bytes, against the allow-list."""

from __future__ import annotations

import filetype

# Types a chat client can show or play safely. Everything else is refused (415).
ALLOWED = {
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "audio/mpeg",
    "audio/ogg",
    "audio/x-wav",
    "audio/wav",
    "audio/mp4",
    "audio/m4a",
    "audio/x-flac",
    "video/mp4",
    "video/webm",
    "video/quicktime",
    "application/pdf",
    "text/plain",
}

SNIFF_BYTES = 8192


def sniff(head: bytes) -> str | None:
    """The allowed content type `head` starts, or None for anything else."""
    kind = filetype.guess(head)
    if kind is not None:
        return kind.mime if kind.mime in ALLOWED else None
    return "text/plain" if _looks_like_text(head) else None


def _looks_like_text(head: bytes) -> bool:
    if not head or b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # The sample may end inside a multi-byte character.
        return exc.start >= len(head) - 3
    return True
