"""What crashed children write: self-describing, so that part of one is told from the whole.

Contents are self-describing (:func:`content`): a header names the content's
tag and size, so any stored bytes can be checked whole on their own
(:func:`tag_of`), without knowing which write they came from.
"""

from __future__ import annotations

import hashlib

__all__ = ["MiB", "Torn", "content", "digest", "tag_of", "text"]

MiB = 1024 * 1024

# -- contents: self-describing, so that part of one is told from the whole ---------------


class Torn(AssertionError):
    """Stored bytes that are not one whole content written by a child."""


def content(tag: str, size: int) -> bytes:
    """Return the content of ``size`` bytes named ``tag``.

    A header line ``crash TAG SIZE`` then bytes that follow from the tag, so
    contents with different tags differ everywhere, and a truncated or mixed
    one fails :func:`tag_of`.

    Parameters
    ----------
    tag
        A name with no whitespace.
    size
        The content's length in bytes, header included.

    Returns
    -------
    bytes
        The content.
    """
    head = f"crash {tag} {size}\n".encode()
    if size < len(head):
        raise ValueError(f"{size} bytes cannot hold the header {head!r}")
    block = hashlib.sha256(tag.encode()).digest() * 32  # 1 KiB
    body = size - len(head)
    return head + (block * (body // len(block) + 1))[:body]


def tag_of(data: bytes) -> str:
    """Return the tag of ``data`` if it is one whole :func:`content`.

    Raises
    ------
    Torn
        ``data`` is not a whole content: truncated, extended, mixed or foreign.
    """
    head, _, _ = data[:200].partition(b"\n")
    parts = head.split(b" ")
    if len(parts) != 3 or parts[0] != b"crash" or not parts[2].isdigit():
        raise Torn(f"no content header in {data[:60]!r} ({len(data)} bytes)")
    tag = parts[1].decode()
    if content(tag, int(parts[2])) != data:
        raise Torn(f"content {tag!r} of {int(parts[2])} bytes stored as {len(data)} other bytes")
    return tag


def digest(data: bytes) -> str:
    """Return a short digest of ``data``."""
    return hashlib.sha256(data).hexdigest()[:20]


def text(tag: str, length: int = 2048) -> str:
    """Return a job's payload: ``length`` characters that follow from ``tag``."""
    seed = hashlib.sha256(tag.encode()).hexdigest()
    return (seed * (length // len(seed) + 1))[:length]
