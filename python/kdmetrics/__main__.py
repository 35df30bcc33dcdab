"""``python -m kdmetrics``: the command line."""

import sys

from kdmetrics.cli import main

sys.exit(main())
