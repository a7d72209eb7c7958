"""Gymnasium environments: :class:`BlindSREnv` (one step) and :class:`BlindSRVectorEnv` (batched), both built
from an :class:`EnvConfig` (or its fields as keywords, as ``gym.make`` passes them)."""

from .blind_sr import BlindSREnv
from .core import EnvConfig
from .vector import BlindSRVectorEnv

__all__ = ["BlindSREnv", "BlindSRVectorEnv", "EnvConfig"]
