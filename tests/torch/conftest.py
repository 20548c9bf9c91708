"""The torch tests share a 2-core machine with other test runs: one intra-op thread each."""

import torch

torch.set_num_threads(1)
