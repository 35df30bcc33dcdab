"""``python -m kdmetrics.cli``: the command line (torchrun needs a module to run)."""

import sys

from kdmetrics.cli import main

sys.exit(main())
