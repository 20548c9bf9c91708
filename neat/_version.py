"""Package and specification versions."""

__version__ = "0.2.0"

#: Version of the update rule (``docs/spec.md``) this package implements. Golden vectors carry it.
SPEC_VERSION = 2
