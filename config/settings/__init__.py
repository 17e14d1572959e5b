"""Settings modules: ``default`` (everything from the environment) and ``test``.

This package's ``__init__`` must stay empty of settings: ``test`` sets environment defaults
before it imports ``default``.
"""
