"""A store's place and lifecycle: its locator, its backends, initialize, resume and destroy.

:class:`StoreBase` is what every store is before it holds anything: a
locator resolved to a filesystem and a root, the backends the marker and the
data go through, and the lifecycle that makes, opens and removes the store
there. :class:`~fsjobstore.store.JobStore` adds what a store holds.
"""

from __future__ import annotations

import threading
import warnings
from typing import Any, ClassVar

from fsspec import AbstractFileSystem
from typing_extensions import override

from . import layout
from .abstract import AbstractJobStore
from .backends import Backend, connect
from .errors import (
    CorruptStoreError,
    InvalidLocatorError,
    JobStoreError,
    JobStoreExistsException,
    JobStoreNotOpenError,
    NoSuchJobStoreException,
    NotAJobStoreError,
)
from .job import Config, decode_config, encode_config
from .locator import parse_locator
from .redaction import SCRUBBER, redact, secrets_of

__all__ = ["StoreBase"]


class StoreBase(AbstractJobStore):
    """A job store's place and lifecycle; see :class:`~fsjobstore.JobStore`.

    Parameters
    ----------
    locator
        A path, ``file:PATH``, ``aws:REGION:BUCKET[:PREFIX]``,
        ``gce:REGION:BUCKET[:PREFIX]`` or any fsspec URL.
    **storage_options
        Passed to the fsspec filesystem (credentials, endpoints …); they
        override what the locator implies and are never stored.
    """

    #: Locator families this class accepts; None for every family.
    families: ClassVar[frozenset[str] | None] = None

    def __init__(self, locator: str, **storage_options: Any) -> None:
        parsed = parse_locator(locator)
        if self.families is not None and parsed.family not in self.families:
            accepted = ", ".join(sorted(self.families))
            raise InvalidLocatorError(
                locator, f"{type(self).__name__} takes only {accepted} locators"
            )
        # The locator as shown and stored: never with the credentials a URL
        # may carry, which only the connection below sees.
        self.locator = redact(parsed.text)
        SCRUBBER.learn(secrets_of(parsed.text, storage_options))
        self._parsed = parsed
        self._user_options = storage_options
        # The marker and the lifecycle go through a filesystem built without
        # the config's options, so resume() can read the marker before it
        # knows, say, the customer encryption key; data goes through one
        # built with them, once the config is known.
        self._plain = connect(parsed, storage_options)
        self._backend = self._plain
        self._config: Config | None = None
        self._pending = threading.local()  # per-thread batch() buffers
        if not self._backend.detects_concurrent_updates:
            warnings.warn(
                f"job store {self.locator!r} is on {type(self.fs).__name__}, which has "
                "no conditional writes: concurrent updates are last-writer-wins",
                RuntimeWarning,
                stacklevel=2,
            )

    def _backends(self, config: Config) -> tuple[Backend, Backend]:
        """Return the backends for the marker and for the data, under ``config``."""
        parsed, user = self._parsed, self._user_options
        backend = type(self._plain)
        access = backend.config_options(config, encrypted=False)
        full = backend.config_options(config)
        plain = connect(parsed, user, access) if access else self._plain
        return plain, plain if full == access else connect(parsed, user, full)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.locator!r})"

    @property
    def fs(self) -> AbstractFileSystem:
        """The fsspec filesystem the store's data goes through."""
        return self._backend.filesystem

    @property
    def root(self) -> str:
        """The store's root path on :attr:`fs`."""
        return self._backend.root

    @property
    def detects_concurrent_updates(self) -> bool:
        """Whether ``update_job`` detects a concurrent writer on this backend."""
        return self._backend.detects_concurrent_updates

    def _path(self, key: str) -> str:
        # Every operation but the lifecycle ones comes through here, so none
        # writes into a location that is not an open store.
        if self._config is None:
            raise JobStoreNotOpenError(self.locator)
        return f"{self._backend.root}/{key}"

    # -- lifecycle --------------------------------------------------------------

    @property
    @override
    def config(self) -> Config:
        if self._config is None:
            raise JobStoreNotOpenError(self.locator)
        return self._config

    @override
    def initialize(self, config: Config | None = None) -> None:
        config = Config() if config is None else config
        if config.jobStore is None or redact(config.jobStore) == self.locator:
            config.jobStore = self.locator  # never the credentials it may carry
        else:
            raise ValueError(
                f"config.jobStore is {redact(config.jobStore)!r} but this store is {self.locator!r}"
            )
        data = encode_config(config)
        plain, backend = self._backends(config)  # a bad key file fails before any write
        marker = f"{plain.root}/{layout.MARKER}"
        if plain.exists(marker):
            raise JobStoreExistsException(self.locator)
        folders, foreign = self._folders(plain, marked=False)
        ours, holds_data = self._leftovers(plain, folders)
        if foreign or not ours:
            raise NotAJobStoreError(self.locator, "initialize")
        if holds_data:
            raise NotAJobStoreError(
                self.locator,
                "initialize",
                "it holds what is left of a job store whose marker is gone "
                "(an interrupted destroy()?): destroy() it first",
            )
        # Temporaries alone are what a killed initialize() leaves: start over.
        for page in plain.pages(f"{plain.root}/{layout.TMP}"):
            plain.delete_many(page)
        plain.prepare(create=True)
        try:
            plain.create(marker, data)
        except FileExistsError:
            raise JobStoreExistsException(self.locator) from None
        self._plain, self._backend, self._config = plain, backend, config

    @override
    def resume(self) -> None:
        marker = f"{self._plain.root}/{layout.MARKER}"
        try:
            data, _ = self._plain.read(marker)
        except IsADirectoryError:
            raise CorruptStoreError(
                f"job store {self.locator!r}: its marker {layout.MARKER} is a folder"
            ) from None
        except (FileNotFoundError, NotADirectoryError):  # nothing there, or a file
            raise NoSuchJobStoreException(self.locator) from None
        try:
            config = decode_config(data)
        except JobStoreError as exc:
            raise CorruptStoreError(f"job store {self.locator!r}: {exc}") from exc
        plain, backend = self._backends(config)
        backend.prepare()
        self._plain, self._backend, self._config = plain, backend, config

    @override
    def destroy(self) -> None:
        plain = self._plain
        marker = f"{plain.root}/{layout.MARKER}"
        stored = plain.exists(marker)
        folders, foreign = self._folders(plain, marked=stored)
        if not stored and (foreign or not self._leftovers(plain, folders)[0]):
            raise NotAJobStoreError(self.locator, "destroy")
        # A page at a time, whatever the store holds. The marker goes last, so
        # an interrupted destroy can be re-run; what is not the store's
        # (beside its folders) stays, and so does the root.
        for folder in folders:
            for page in plain.pages(folder):
                plain.delete_many(page)
        if stored:
            plain.delete_many([marker])
        plain.remove_root()
        self._backend, self._config = plain, None

    def _folders(self, plain: Backend, *, marked: bool) -> tuple[list[str], bool]:
        """Return the store's own folders there, and whether anything beside them is another's.

        A root that is a file is another's; so is a marker that is not one
        (``marked`` false though the name is there: a folder, say).
        """
        try:
            names = set(plain.entries(plain.root))
        except NotADirectoryError:
            return [], True
        foreign = any(n not in layout.TOP_LEVEL and n != layout.MARKER for n in names)
        if not marked and layout.MARKER in names:
            foreign = True
        return [f"{plain.root}/{name}" for name in sorted(layout.TOP_LEVEL & names)], foreign

    def _leftovers(self, plain: Backend, folders: list[str]) -> tuple[bool, bool]:
        """Tell whether what the folders hold is all a store's, and whether any of it is data.

        Without the marker, only keys of a form no user's file takes by
        chance (:func:`layout.is_store_key`) count as a store's leftovers;
        data is anything but temporaries. Read a page at a time.
        """
        skip = len(plain.root) + 1
        data = False
        for folder in folders:
            for page in plain.pages(folder):
                keys = [path[skip:] for path in page]
                if not all(layout.is_store_key(key) for key in keys):
                    return False, True
                data = data or any(not key.startswith(layout.TMP) for key in keys)
        return True, data
