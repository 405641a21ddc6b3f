"""``python -m cfx``: the same as the ``cfx`` command."""

import sys

from cfx.cli import main

sys.exit(main())
