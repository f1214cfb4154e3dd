"""`python -m nas`: the `nas` command (``nas.cli.main``)."""

import sys

from nas.cli import main

sys.exit(main())
