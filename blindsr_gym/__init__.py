"""blindsr-gym: blind image super-resolution as a one-step reinforcement-learning problem."""

__version__ = "0.1.0"
