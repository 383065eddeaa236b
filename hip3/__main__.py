"""`python -m hip3 ...`: the same commands as the `hip3` console script."""

from hip3.service.cli import main

raise SystemExit(main())
