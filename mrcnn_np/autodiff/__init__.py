"""Autodiff-lite: a Tensor with a tape, forward/backward op pairs, modules and SGD."""
