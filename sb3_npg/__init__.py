"""sb3-npg: natural policy gradient and KL-penalty PPO for Stable-Baselines3."""

from sb3_npg.klppo import KLPPO
from sb3_npg.npg import NPG
from sb3_npg.version import __version__

__all__ = ["KLPPO", "NPG", "__version__"]
