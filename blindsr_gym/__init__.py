"""blindsr-gym: blind image super-resolution as a one-step reinforcement-learning problem.

    import gymnasium as gym
    import blindsr_gym

    gym.register_envs(blindsr_gym)   # Gymnasium 1.x has no env plugins: importing the package registers the ids
    env = gym.make("BlindSR-NIQE-v0")

(``gym.make("blindsr_gym:BlindSR-NIQE-v0")`` imports the package itself.)
"""

__version__ = "0.1.0"

# id -> default kwargs (any of them can be overridden in gym.make)
ENV_IDS = {
    "BlindSR-NIQE-v0": {"renderer": "amgan_x4", "metric": "niqe"},  # AMGAN-RL: perception-driven
    "BlindSR-PSNR-v0": {"renderer": "amnet_x4", "metric": "psnr"},  # AMNet-RL
    "BlindSR-SSIM-v0": {"renderer": "amnet_x4", "metric": "ssim"},
    "BlindSR-v0": {},  # everything from kwargs (defaults: amnet_x4, psnr)
}


def register_envs() -> None:
    """Register the ids with Gymnasium; safe to call more than once."""
    import gymnasium as gym

    for env_id, kwargs in ENV_IDS.items():
        if env_id in gym.registry:
            continue
        gym.register(id=env_id, entry_point="blindsr_gym.envs.blind_sr:BlindSREnv",
                     vector_entry_point="blindsr_gym.envs.vector:BlindSRVectorEnv", kwargs=dict(kwargs),
                     disable_env_checker=False)


register_envs()
