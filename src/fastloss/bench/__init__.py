"""fastloss's benchmark suite and the reference implementations it and the tests use.

Tooling, not part of the losses: nothing in fastloss imports it.  ``python -m fastloss
bench`` runs the suite.
"""
