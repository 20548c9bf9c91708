"""Run torch's ``TestOptimRenewed`` (``../shared/peer/torch_test_optim.py``, used from there) on CPU
against :data:`~tests.torch_optim_contract.ngadam_info.NGADAM_INFO`:

    python -m tests.torch_optim_contract [--dynamo] [pytest arguments]

``--dynamo`` runs torch's dynamo mode (``PYTORCH_TEST_WITH_DYNAMO=1``). The tests of
:data:`~tests.torch_optim_contract.ngadam_info.EXCLUDED` are strict expected failures. Prints the
pass, fail and skip counts; exits non-zero on any failure."""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PEER = ROOT.parent / "shared" / "peer" / "torch_test_optim.py"

#: The sibling modules of torch's test/optim/ that the peer file imports (not part of the contract).
SIBLINGS = {
    "optim.test_lrscheduler": "TestLRScheduler",
    "optim.test_optim": "TestDifferentiableOptimizer",
    "optim.test_swa_utils": "TestSWAUtils",
}


def install_sibling_stand_ins() -> None:
    """Empty modules, each with an empty class under the name the peer file imports."""
    sys.modules.setdefault("optim", types.ModuleType("optim"))
    for module_name, class_name in SIBLINGS.items():
        module = types.ModuleType(module_name, "stand-in: not part of the torch.optim contract")
        setattr(module, class_name, type(class_name, (), {}))
        sys.modules[module_name] = module


class ContractPlugin:
    """pytest plugin: points torch's optimizer database at NGAdam before the peer file is imported,
    marks the excluded tests strict expected failures (their reason shown) and counts outcomes."""

    def __init__(self):
        self.excluded: dict[str, tuple[type[BaseException], str]] = {}
        self.counts: dict[str, int] = {}

    def pytest_configure(self, config):
        from torch.testing._internal import common_optimizers

        from tests.torch_optim_contract.ngadam_info import EXCLUDED, NGADAM_INFO

        install_sibling_stand_ins()
        common_optimizers.optim_db[:] = [NGADAM_INFO]  # the list the peer file imports, before it does
        self.excluded = EXCLUDED
        config.addinivalue_line("markers", "serial: torch's mark for tests that must run alone")

    def pytest_collection_modifyitems(self, items):
        import pytest

        for item in items:
            for name, (error, reason) in self.excluded.items():
                if item.name.startswith(f"{name}_NGAdam_"):
                    item.add_marker(pytest.mark.xfail(strict=True, raises=error, reason=reason))

    def pytest_runtest_logreport(self, report):
        if report.when == "call" or report.outcome != "passed":
            outcome = "xfailed" if hasattr(report, "wasxfail") and report.skipped else report.outcome
            self.counts[outcome] = self.counts.get(outcome, 0) + 1


def main(argv: list[str]) -> int:
    if "--dynamo" in argv:
        argv = [arg for arg in argv if arg != "--dynamo"]
        os.environ["PYTORCH_TEST_WITH_DYNAMO"] = "1"
    if not PEER.is_file():
        print(f"torch's test_optim.py is not at {PEER} (../shared/peer next to the checkout)", file=sys.stderr)
        return 2
    import pytest

    plugin = ContractPlugin()
    args = ["-q", "-p", "no:cacheprovider", "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(ROOT)]
    status = pytest.main([*args, f"{PEER}::TestOptimRenewedCPU", *argv], plugins=[plugin])
    counts = ", ".join(f"{count} {outcome}" for outcome, count in sorted(plugin.counts.items()))
    mode = ", dynamo" if os.environ.get("PYTORCH_TEST_WITH_DYNAMO") == "1" else ""
    print(f"torch.optim contract (TestOptimRenewedCPU, NGAdam{mode}): {counts}")
    return int(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
