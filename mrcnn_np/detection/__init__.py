"""Mask R-CNN's own pieces, one concept per module (anchors, matcher, sampler, pooler, ...)."""
