"""What of the environment reaches Toil's workers, and what never enters the store.

Toil's leader pickles its whole environment into the shared file
``environment.pickle``, and every worker applies it over its own. With a
store on S3, Azure or SFTP the leader's environment usually holds the
credentials that reach the store; Toil would keep them in the store for as
long as it exists. The Toil layer writes that shared file without the
variables that look like credentials; workers take those from their own
environment (the batch system's, an instance role, fsspec's configuration
files), as they must to open the store in the first place.
"""

from __future__ import annotations

import io
import os
import pickle
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["ENVIRONMENT_FILE", "is_secret", "scrub_pickled_environment", "worker_environment"]

#: The shared file in which Toil's leader stores its environment.
ENVIRONMENT_FILE = "environment.pickle"

#: Words in a variable's name that mark its value as a credential.
_SECRET_WORDS = re.compile(
    r"PASS|SECRET|TOKEN|KEY|CREDENTIAL|SAS|AUTH|SIGNATURE|CONNECTION_STRING|COOKIE|SESSION",
    re.IGNORECASE,
)
#: Variables named like secrets that hold only a path or a name.
_NOT_SECRET = frozenset({"GOOGLE_APPLICATION_CREDENTIALS", "AWS_SHARED_CREDENTIALS_FILE"})
#: Variables that tell a client where its service is, or which profile to use:
#: workers need them to open the store, and they hold no secret.
_REACH = frozenset(
    {
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_PROFILE",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_EC2_METADATA_DISABLED",
        "STORAGE_EMULATOR_HOST",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "GOOGLE_CLOUD_PROJECT",
        "NO_GCE_CHECK",
        "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT",
        "AZURE_STORAGE_ACCOUNT_NAME",
        "AZURE_STORAGE_ACCOUNT",
        "FSSPEC_CONFIG_DIR",
    }
)


def is_secret(name: str, value: str = "") -> bool:
    """Whether environment variable ``name`` may hold a credential.

    An fsspec configuration variable (``FSSPEC_<PROTOCOL>``, a JSON object of
    options) counts as one when any option in it is named like a secret.
    """
    upper = name.upper()
    if upper in _NOT_SECRET:
        return False
    if _SECRET_WORDS.search(upper):
        return True
    if upper.startswith("FSSPEC_") and value.lstrip().startswith("{"):
        return bool(_SECRET_WORDS.search(value))
    return False


def worker_environment(protocol: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return the variables a worker needs to reach a store on ``protocol``, secrets excepted.

    These go to Toil's batch system (``AbstractJobStore.get_env``), which
    sets them for every worker; they are never written into the store.
    """
    environ = os.environ if environ is None else environ
    fsspec_prefix = f"FSSPEC_{protocol.upper()}"
    return {
        name: value
        for name, value in environ.items()
        if (name in _REACH or name == fsspec_prefix or name.startswith(f"{fsspec_prefix}_"))
        and not is_secret(name, value)
    }


class _PlainData(pickle.Unpickler):
    """Reads a pickle of plain data only: it may name no class or function."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"{module}.{name} is not plain data")


def scrub_pickled_environment(data: bytes) -> bytes:
    """Return Toil's pickled environment without the variables that hold credentials.

    Raises
    ------
    ValueError
        ``data`` is not a pickled mapping of strings to strings; nothing of it
        is to be stored.
    """
    try:
        environment = _PlainData(io.BytesIO(data)).load()
    except Exception as exc:
        raise ValueError(f"{ENVIRONMENT_FILE} is not a pickled environment: {exc}") from None
    if not isinstance(environment, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in environment.items()
    ):
        raise ValueError(f"{ENVIRONMENT_FILE} is not a mapping of strings to strings")
    kept = {k: v for k, v in environment.items() if not is_secret(k, v)}
    return pickle.dumps(kept, protocol=pickle.HIGHEST_PROTOCOL)
