"""`python -m nas.cli`: the `nas` command, as `python -m nas`."""

import sys

from nas.cli import main

sys.exit(main())
