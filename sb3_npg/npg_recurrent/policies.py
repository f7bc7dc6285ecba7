"""Policies for RecurrentNPG: sb3-contrib's LSTM actor-critic policies, under the names RecurrentPPO uses."""

from sb3_contrib.ppo_recurrent.policies import CnnLstmPolicy, MlpLstmPolicy, MultiInputLstmPolicy

__all__ = ["CnnLstmPolicy", "MlpLstmPolicy", "MultiInputLstmPolicy"]
