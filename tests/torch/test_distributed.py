"""DDP and FSDP2 on 2 gloo processes (CPU) give the parameters of a single-process run."""

from __future__ import annotations

import socket
import time

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from tests.torch import distributed_worker
from tests.torch.models import assert_close_lists

pytestmark = pytest.mark.skipif(
    not dist.is_available() or not dist.is_gloo_available(),
    reason="torch.distributed with gloo is not available in this build",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: Seconds the two workers may take (a few in a normal run): a hung worker fails the test
#: instead of holding CI until its own time limit.
WORKER_TIMEOUT = 180


def run_two_processes(mode, flags, tmp_path):
    result = tmp_path / f"{mode}.pt"
    arguments = (2, free_port(), mode, str(result), flags)
    context = mp.start_processes(distributed_worker.worker, args=arguments, nprocs=2, join=False)
    deadline = time.monotonic() + WORKER_TIMEOUT
    while not context.join(timeout=max(deadline - time.monotonic(), 0)):  # returns as each one exits
        if time.monotonic() >= deadline:
            for process in context.processes:
                process.kill()
            written = "after" if result.exists() else "before"
            pytest.fail(f"the {mode} workers did not exit within {WORKER_TIMEOUT} s ({written} writing their result)")
    return torch.load(result, weights_only=True)


@pytest.mark.parametrize(
    "mode, flags", [("ddp", {}), ("fsdp2", {}), ("fsdp2", {"foreach": True})], ids=["ddp", "fsdp2", "fsdp2-foreach"]
)
def test_two_processes_match_a_single_process(mode, flags, tmp_path):
    result = run_two_processes(mode, flags, tmp_path)
    assert result["sharded"] == (mode == "fsdp2")
    expected = distributed_worker.single_process_run()
    assert_close_lists(result["params"], expected, rtol=1e-10, atol=1e-12)
