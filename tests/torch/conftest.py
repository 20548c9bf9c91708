"""The torch tests share a 2-core machine with other test runs: one intra-op thread each."""

import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (optional framework: pip install -e '.[torch]')")

torch.set_num_threads(1)
