"""Every writing operation, killed with SIGKILL at random points, on local disk and on S3.

Each test runs one operation in a loop in a child process (see
:mod:`tests.crashes.child`) that reports every step it finished, kills it at a
seeded random point spread over a step, and then checks with a **fresh**
store object, in this process, what ``docs/index.md`` ("After a crash")
promises:

- every step the child reported finished is there whole: jobs load and hold
  the payload written, files read back to the digest reported, a shared
  file holds one of the versions written, whole;
- nothing is half-visible: ``jobs()`` and ``get_all_file_ids()`` list only
  whole items, the step in flight left the old content or nothing (or, for a
  write with no ID yet, at most one new file, whole), and raw storage holds
  nothing outside ``tmp/`` that the store does not list;
- a killed ``batch()`` leaves any subset of its jobs, each whole;
- log messages are each delivered at least once in all, and again only if a
  killed reader had delivered them without archiving them;
- a killed ``initialize()`` can be re-run to success (or the store it made
  opens), a killed ``destroy()`` is finished by ``destroy()``, with or
  without the marker left, and the location is usable again;
- in the end ``fsjobstore.maintenance.clean(store, older_than=0)`` removes
  exactly the temporaries the kills left (files in ``tmp/`` on local disk,
  incomplete multipart uploads on S3, as raw storage and moto's
  ``ListMultipartUploads`` show them), leaves none, and every finished write
  is still there, whole.

Kill points are drawn from a random generator seeded with
``FSJOBSTORE_CRASH_SEED`` (``crash-1`` by default), the test's name and the
backend; the same seed aims the same kills, though where each lands also
depends on the machine's timing. A failure names the round and the point.
The ``long`` variants (``pytest -m long``) kill three times as often, with
other seeds, and add streams over 50 MiB (multipart uploads on S3).

Children are forked from a fork server that has imported fsjobstore and the
storage clients once (:mod:`tests.crashes.crasher`): a fresh interpreter takes one
to three seconds to start here, a fork about 20 ms. moto runs in this
process; requests a child had sent before it died are still served after
the kill, and take effect then, so on S3 every check waits until moto has
served them (:meth:`Bench.kill`; the number is reported). On S3 a killed log
reader's lease keeps the next reader waiting 30 seconds: the default run
kills one reader there (three in the long run), after one that is not killed.

Each test prints what its kills did (``pytest -rP``): per kill, the steps
waited for, the fraction of a step aimed at, the steps finished, whether a
step was in flight, and how late the kill came.
"""

from __future__ import annotations
