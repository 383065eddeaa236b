"""`python -m hip3.sim [--config PATH] [--port N] [--seed N] [--watch S]`."""

import sys

from hip3.sim.cli import main

sys.exit(main(sys.argv[1:]))
