"""torch's own optimizer test-suite (``test/test_optim.py``, class ``TestOptimRenewed``) run against
``neat.torch.NGAdam``: ``python -m tests.torch_optim_contract`` (see :mod:`.__main__`)."""
