"""Policies for RecurrentNPG: sb3-contrib's LSTM actor-critic policies, under the names RecurrentPPO uses."""

from sb3_npg.common.recurrent_policies import CnnLstmPolicy, MlpLstmPolicy, MultiInputLstmPolicy

__all__ = ["CnnLstmPolicy", "MlpLstmPolicy", "MultiInputLstmPolicy"]
