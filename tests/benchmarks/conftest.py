"""The benchmark suite trains torch models (the ``torch`` extra)."""

import pytest

pytest.importorskip("torch", reason="torch is not installed (optional framework: pip install -e '.[torch]')")
