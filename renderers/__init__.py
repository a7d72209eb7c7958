"""Non-blind SR networks conditioned on a kernel code (installed as ``blindsr_gym.renderers``).

AMNet, AMGAN and DAN land with the renderer issue.
"""
