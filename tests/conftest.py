"""Suite-wide test settings.

Under CI (the `CI` environment variable is set) hypothesis runs derandomized, so a red run is
reproducible from the same commit, and without per-example deadlines, which a loaded 2-core
machine would turn into false failures. Locally it explores new examples on every run.
"""

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
