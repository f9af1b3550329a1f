"""``python -m fsjobstore.cli``: the ``fsjobstore`` command."""

import sys

from . import main

sys.exit(main())
