from sb3_npg.npg_recurrent.npg_recurrent import RecurrentNPG
from sb3_npg.npg_recurrent.policies import CnnLstmPolicy, MlpLstmPolicy, MultiInputLstmPolicy

__all__ = ["CnnLstmPolicy", "MlpLstmPolicy", "MultiInputLstmPolicy", "RecurrentNPG"]
