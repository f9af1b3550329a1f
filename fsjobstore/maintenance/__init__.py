"""Maintenance of job stores: look inside, move, migrate, clean and destroy.

Every function here works on any backend, and is what one command of the
``fsjobstore`` command line calls:

=========================  ===============================================
command                    function
=========================  ===============================================
``init``                   :func:`init`
``status``                 :func:`summary`
``jobs``, ``show``         :func:`job_documents`, :func:`job_document`
``files``                  :func:`files`
``cat``                    :func:`cat`
``logs``                   :func:`read_logs`
``import``, ``export``     :func:`import_urls`, :func:`export_files`
``migrate``                :func:`migrate`
``clean``                  :func:`clean`
``destroy``                :func:`destroy`
``demo``                   :func:`demo`
=========================  ===============================================

The functions that look inside a store take an open :class:`~fsjobstore.JobStore`
(:func:`open_store` opens one); those that make, move or remove a whole store
take locators.
"""

from __future__ import annotations

from ..backends.temporaries import Temporary
from .clean import DEFAULT_AGE, CleanReport, clean
from .demo import DEFAULT_DEMO_STORE, DEMO_MARK, DemoRefused, demo
from .inventory import (
    FileInfo,
    cat,
    export_files,
    files,
    import_urls,
    job_document,
    job_documents,
    read_logs,
    summary,
)
from .lifecycle import MIGRATION_RECORD, destroy, init, open_store
from .migrate import CONCURRENCY as MIGRATE_CONCURRENCY
from .migrate import MigrationRefused, MigrationReport, migrate

__all__ = [
    "DEFAULT_AGE",
    "DEFAULT_DEMO_STORE",
    "DEMO_MARK",
    "MIGRATE_CONCURRENCY",
    "MIGRATION_RECORD",
    "CleanReport",
    "DemoRefused",
    "FileInfo",
    "MigrationRefused",
    "MigrationReport",
    "Temporary",
    "cat",
    "clean",
    "demo",
    "destroy",
    "export_files",
    "files",
    "import_urls",
    "init",
    "job_document",
    "job_documents",
    "migrate",
    "open_store",
    "read_logs",
    "summary",
]
