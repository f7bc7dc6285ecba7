"""Policies for NPG: SB3's actor-critic policies, under the names SB3 users know (see :mod:`sb3_npg.common.policies`)."""

from sb3_npg.common.policies import CnnPolicy, MlpPolicy, MultiInputPolicy

__all__ = ["CnnPolicy", "MlpPolicy", "MultiInputPolicy"]
