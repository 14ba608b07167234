"""`python -m vapixlog.cli`: the `vapixlog` command."""

import sys

from vapixlog.cli import main

sys.exit(main())
