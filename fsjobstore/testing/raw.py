"""Backdoor access to what a store wrote, through the raw filesystem, not the store."""

from __future__ import annotations

from .. import JobStore


def raw_keys(store: JobStore) -> set[str]:
    """Return every file below the store's root, as keys relative to it."""
    fs, root = store.fs, store.root
    if not fs.exists(root):
        return set()
    skip = len(root) + 1
    return {p[skip:] for p in fs.find(root)}


def raw_read(store: JobStore, key: str) -> bytes:
    """Return the bytes stored under ``key``."""
    data: bytes = store.fs.cat_file(f"{store.root}/{key}")
    return data


def raw_write(store: JobStore, key: str, data: bytes) -> None:
    """Store ``data`` under ``key`` without the store's help."""
    path = f"{store.root}/{key}"
    store.fs.makedirs(store.fs._parent(path), exist_ok=True)
    store.fs.pipe_file(path, data)
