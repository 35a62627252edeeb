"""Hypothesis in CI: the same examples every run, and no per-example deadline.

Locally every run draws new examples, which is how they find bugs; CI must
not go red on a draw nobody can reproduce, nor on an example that ran slowly
because the machine was busy.
"""

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
