from sb3_npg.klppo_recurrent.klppo_recurrent import RecurrentKLPPO
from sb3_npg.klppo_recurrent.policies import CnnLstmPolicy, MlpLstmPolicy, MultiInputLstmPolicy

__all__ = ["CnnLstmPolicy", "MlpLstmPolicy", "MultiInputLstmPolicy", "RecurrentKLPPO"]
