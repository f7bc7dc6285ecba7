from sb3_npg.klppo.klppo import KLPPO
from sb3_npg.klppo.policies import CnnPolicy, MlpPolicy, MultiInputPolicy

__all__ = ["KLPPO", "CnnPolicy", "MlpPolicy", "MultiInputPolicy"]
