"""Policies and their training (installed as ``blindsr_gym.agents``).

The actor, the one-step DDPG and the Stable-Baselines3 comparison land with the agents issue.
"""
