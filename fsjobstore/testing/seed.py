"""The seed document's code samples, run as written, on every backend.

The sample code below is the seed's (``shared/seed/job-stores.md``), with
``fsjobstore`` imports and three substitutions a test needs: the locators and
temporary paths point into the test's own space, and off local disk
``FileJobStore`` (local disk only) is ``JobStore``. Checks follow each sample.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import fsspec
import pytest

from .. import (
    AbstractJobStore,
    ConcurrentFileModificationException,
    Config,
    FileJobStore,
    JobDescription,
    JobStore,
    JobStoreExistsException,
    NoSuchFileException,
    NoSuchJobException,
    NoSuchJobStoreException,
)
from ..locator import parse_locator
from .base import ContractBase
from .target import Target


def on_local_disk(target: Target) -> bool:
    """Whether the target is a local directory."""
    return parse_locator(target.locator).family == "file"


def locator_of(target: Target) -> str:
    """Return the locator as the seed writes it: ``file:`` on local disk."""
    return f"file:{target.locator}" if on_local_disk(target) else target.locator


def other_locator(target: Target, tmp_path: Path) -> str:
    """Return a locator on another backend, for the migration sample."""
    if on_local_disk(target):
        return f"memory://seed-migration-{os.getpid()}-{time.time_ns()}"
    return f"file:{tmp_path / 'migrated'}"


def populate(job_store: AbstractJobStore, tmp_path: Path) -> dict[str, Any]:
    """Three jobs (one failed, one completed), files with and without owners."""
    jobs = [job_store.create(JobDescription(jobName=f"job{i}")) for i in range(3)]
    jobs[0].remainingTryCount = 0
    job_store.update(jobs[0])
    jobs[1].completed = True
    job_store.update(jobs[1])
    data = tmp_path / "data.bin"
    data.write_bytes(b"x" * 1000)
    owned = job_store.writeFile(str(data), jobStoreID=jobs[2].jobStoreID)
    orphan = job_store.writeFile(str(data), jobStoreID="long-gone-job")
    unowned = job_store.writeFile(str(data))
    return {"jobs": jobs, "owned": owned, "orphan": orphan, "unowned": unowned}


class SeedContract(ContractBase):
    """The seed document's samples, run as written: they pass no storage options."""

    pytestmark = pytest.mark.usefixtures("environment")

    @pytest.fixture
    def environment(self, target: Target, monkeypatch: pytest.MonkeyPatch) -> None:
        """Reach the target the way a user's script would: environment and fsspec config."""
        for name, value in target.env.items():
            monkeypatch.setenv(name, value)
        for protocol, options in target.config.items():
            monkeypatch.setitem(fsspec.config.conf, protocol, options)

    def test_file_job_store_sample(self, target: Target, tmp_path: Path) -> None:
        store_class = FileJobStore if on_local_disk(target) else JobStore
        # File job store configuration
        config = Config()
        config.jobStore = locator_of(target)  # seed: "file:/tmp/my-workflow-jobstore"

        # Initialize file job store
        file_store = store_class(config.jobStore)
        file_store.initialize(config)

        # Create job description
        job_desc = JobDescription(
            requirements={"memory": 1024 * 1024 * 1024, "cores": 1, "disk": 1024 * 1024 * 1024},
            jobName="test_job",
            unitName="test_unit",
        )

        # Store job
        created_job = file_store.create(job_desc)
        job_id = created_job.jobStoreID

        # Update job
        created_job.remainingTryCount = 2
        file_store.update(created_job)

        # Load job
        loaded_job = file_store.load(job_id)

        # Store file
        test_file = str(tmp_path / "input.txt")  # seed: "/tmp/input.txt"
        with open(test_file, "w") as f:
            f.write("test data")

        file_id = file_store.writeFile(test_file, jobStoreID=job_id)

        # Read file back
        output_file = str(tmp_path / "output.txt")  # seed: "/tmp/output.txt"
        file_store.readFile(file_id, output_file)

        assert loaded_job.jobName == "test_job"
        assert loaded_job.remainingTryCount == 2
        assert loaded_job.requirements == job_desc.requirements
        assert Path(output_file).read_text() == "test data"
        assert file_store.get_file_job_association(file_id) == job_id

        # Cleanup
        file_store.deleteFile(file_id)
        file_store.delete(job_id)

        assert not file_store.fileExists(file_id)
        with pytest.raises(NoSuchJobException):
            file_store.load(job_id)

    def test_utilities_sample(
        self, target: Target, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        config = Config()
        config.jobStore = locator_of(target)  # seed: "file:/tmp/utility-demo"

        # Get job store instance
        job_store = AbstractJobStore.createJobStore(config.jobStore)
        job_store.initialize(config)
        made = populate(job_store, tmp_path)

        # Job enumeration and statistics
        total_jobs = 0
        completed_jobs = 0
        failed_jobs = 0

        for job in job_store.jobs():
            total_jobs += 1
            if job.remainingTryCount == 0:
                failed_jobs += 1
            elif hasattr(job, "completed") and job.completed:
                completed_jobs += 1

        print(f"Total jobs: {total_jobs}")
        print(f"Completed: {completed_jobs}")
        print(f"Failed: {failed_jobs}")

        # File inventory
        all_files = job_store.get_all_file_ids()  # Implementation specific
        total_size = 0

        for file_id in all_files:
            if job_store.fileExists(file_id):
                file_size = job_store.getFileSize(file_id)  # Implementation specific
                total_size += file_size

        print(f"Total files: {len(all_files)}")
        print(f"Total size: {total_size / (1024 * 1024)} MB")

        # Cleanup orphaned files
        def cleanup_orphaned_files() -> None:
            """Remove files not associated with any job."""
            active_job_ids = {job.jobStoreID for job in job_store.jobs()}

            for file_id in all_files:
                associated_job = job_store.get_file_job_association(file_id)
                if associated_job not in active_job_ids:
                    print(f"Cleaning up orphaned file: {file_id}")
                    job_store.deleteFile(file_id)

        cleanup_orphaned_files()

        out = capsys.readouterr().out
        assert "Total jobs: 3\nCompleted: 1\nFailed: 1\n" in out
        assert f"Total files: 3\nTotal size: {3000 / (1024 * 1024)} MB" in out
        assert job_store.get_all_file_ids() == [made["owned"]]
        assert out.count("Cleaning up orphaned file") == 2

    def test_migration_sample(self, target: Target, tmp_path: Path) -> None:
        source_locator = locator_of(target)
        seeded = JobStore(source_locator)
        seeded.initialize()
        made = populate(seeded, tmp_path)

        def migrate_job_store(source_locator: str, dest_locator: str) -> None:
            """Migrate job store from one backend to another."""
            source_config = Config()
            source_config.jobStore = source_locator
            source_store = AbstractJobStore.createJobStore(source_locator)
            source_store.resume()

            dest_config = Config()
            dest_config.jobStore = dest_locator
            dest_store = AbstractJobStore.createJobStore(dest_locator)
            dest_store.initialize(dest_config)

            # Migrate all jobs
            for job in source_store.jobs():
                dest_store.create(job)

            # Migrate all files
            for file_id in source_store.get_all_file_ids():
                if source_store.fileExists(file_id):
                    # Read from source
                    temp_file = str(
                        tmp_path / f"migration_{file_id}"
                    )  # seed: f"/tmp/migration_{file_id}"
                    source_store.readFile(file_id, temp_file)

                    # Write to destination
                    dest_store.writeFile(temp_file, jobStoreID=None)

                    # Cleanup temp file
                    os.unlink(temp_file)

            print(f"Migration complete: {source_locator} -> {dest_locator}")

        dest_locator = other_locator(target, tmp_path)
        migrate_job_store(source_locator, dest_locator)

        dest = JobStore(dest_locator)
        dest.resume()
        moved = {j.jobStoreID: j for j in dest.jobs()}
        assert moved == {j.jobStoreID: seeded.load(j.jobStoreID) for j in made["jobs"]}
        assert len(dest.get_all_file_ids()) == 3
        for file_id in dest.get_all_file_ids():
            assert dest.getFileSize(file_id) == 1000
        dest.destroy()

    def test_error_handling_sample(self, target: Target, tmp_path: Path) -> None:
        job_store = JobStore(locator_of(target))
        job_store.initialize()

        def merge_job_changes(job: JobDescription, fresh_job: JobDescription) -> JobDescription:
            fresh_job.remainingTryCount = job.remainingTryCount
            return fresh_job

        def safe_job_update(job: JobDescription, max_retries: int = 3) -> bool:
            """Update job with retry logic for concurrent modifications."""
            for attempt in range(max_retries):
                try:
                    job_store.update(job)
                    return True

                except ConcurrentFileModificationException as e:
                    logging.warning(f"Concurrent modification attempt {attempt + 1}: {e}")

                    if attempt < max_retries - 1:
                        # Wait and reload fresh job state
                        time.sleep(0.1 * (2**attempt))  # Exponential backoff
                        fresh_job = job_store.load(job.jobStoreID)
                        # Merge changes if possible
                        job = merge_job_changes(job, fresh_job)
                    else:
                        logging.error("Failed to update job after max retries")
                        raise

                except NoSuchJobException as e:
                    logging.error(f"Job no longer exists: {e}")
                    return False

            return False

        def safe_file_operations(file_operations: list[dict[str, Any]]) -> list[tuple[str, Any]]:
            """Execute file operations with error recovery."""
            completed_operations: list[tuple[str, Any]] = []

            for operation in file_operations:
                try:
                    if operation["type"] == "write":
                        file_id = job_store.writeFile(
                            operation["local_path"], jobStoreID=operation.get("job_id")
                        )
                        completed_operations.append(("write", file_id))

                    elif operation["type"] == "read":
                        job_store.readFile(operation["file_id"], operation["local_path"])
                        completed_operations.append(("read", operation["file_id"]))

                    elif operation["type"] == "import":
                        file_id = job_store.importFile(
                            operation["src_url"], sharedFileName=operation.get("shared_name")
                        )
                        completed_operations.append(("import", file_id))

                except NoSuchFileException as e:
                    logging.error(f"File operation failed - file not found: {e}")
                    # Skip this operation, continue with others

                except Exception as e:
                    logging.error(f"File operation failed: {e}")
                    # Rollback completed operations
                    rollback_file_operations(completed_operations)
                    raise

            return completed_operations

        def rollback_file_operations(operations: list[tuple[str, Any]]) -> None:
            """Rollback completed file operations on error."""
            for op_type, file_id in reversed(operations):
                try:
                    if op_type in ("write", "import"):
                        job_store.deleteFile(file_id)
                        logging.info(f"Rolled back {op_type} operation for file {file_id}")
                except Exception as e:
                    logging.warning(f"Failed to rollback {op_type} for {file_id}: {e}")

        # A stale copy is merged and retried; a deleted job reports False.
        job = job_store.create(JobDescription(jobName="contended"))
        stale = job_store.load(job.jobStoreID)
        job.remainingTryCount = 7
        job_store.update(job)
        stale.remainingTryCount = 9
        assert safe_job_update(stale) is True
        assert job_store.load(job.jobStoreID).remainingTryCount == 9
        job_store.delete(job.jobStoreID)
        assert safe_job_update(stale) is False

        src = tmp_path / "in.txt"
        src.write_text("payload")
        ghost = job_store.getEmptyFileStoreID()
        job_store.deleteFile(ghost)
        done = safe_file_operations(
            [
                {"type": "write", "local_path": str(src)},
                {"type": "read", "file_id": ghost, "local_path": str(tmp_path / "o")},
                {"type": "import", "src_url": src.as_uri(), "shared_name": "in.txt"},
            ]
        )
        assert [op for op, _ in done] == ["write", "import"]
        assert job_store.fileExists(done[0][1])
        with pytest.raises(FileNotFoundError):
            safe_file_operations(
                [
                    {"type": "write", "local_path": str(src)},
                    {"type": "import", "src_url": str(tmp_path / "absent")},
                ]
            )
        assert job_store.get_all_file_ids() == [done[0][1]]  # the second write was rolled back

    def test_initialization_errors_sample(self, target: Target, tmp_path: Path) -> None:
        def handle_job_store_initialization_errors(locator: str, fallback: str) -> AbstractJobStore:
            """Handle errors during job store initialization."""
            config = Config()
            config.jobStore = locator  # seed: "aws:us-west-2:my-bucket:workflow-123"

            try:
                job_store = AbstractJobStore.createJobStore(config.jobStore)
                job_store.initialize(config)

            except JobStoreExistsException as e:
                logging.info(f"Job store already exists, resuming: {e}")
                job_store.resume()

            except NoSuchJobStoreException as e:
                logging.error(f"Job store not found, cannot resume: {e}")
                # Create new job store
                job_store.initialize(config)

            except Exception as e:
                logging.error(f"Failed to initialize job store: {e}")
                # Try alternative job store location
                config.jobStore = fallback  # seed: "file:/tmp/fallback-jobstore"
                job_store = AbstractJobStore.createJobStore(config.jobStore)
                job_store.initialize(config)

            return job_store

        fallback = f"file:{tmp_path / 'fallback-jobstore'}"
        fresh = handle_job_store_initialization_errors(locator_of(target), fallback)
        job = fresh.create(JobDescription(jobName="survives"))
        again = handle_job_store_initialization_errors(locator_of(target), fallback)
        assert again.load(job.jobStoreID).jobName == "survives"  # resumed, not re-created
        broken = handle_job_store_initialization_errors("nosuchscheme://bucket/x", fallback)
        assert broken.locator == fallback
        assert broken.config.jobStore == fallback
