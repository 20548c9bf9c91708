"""Package and specification versions."""

__version__ = "0.1.0"

#: Version of ``shared/SPEC.md`` this package implements. Golden vectors carry it.
SPEC_VERSION = 2
