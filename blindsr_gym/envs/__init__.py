"""Gymnasium environments: :class:`BlindSREnv` (one step) and :class:`BlindSRVectorEnv` (batched)."""

from .blind_sr import BlindSREnv
from .vector import BlindSRVectorEnv

__all__ = ["BlindSREnv", "BlindSRVectorEnv"]
