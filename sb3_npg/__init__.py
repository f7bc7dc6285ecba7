"""sb3-npg: natural policy gradient and KL-penalty PPO for Stable-Baselines3."""

from typing import TYPE_CHECKING, Any

from sb3_npg.klppo import KLPPO
from sb3_npg.npg import NPG
from sb3_npg.version import __version__

if TYPE_CHECKING:
    from sb3_npg.klppo_recurrent import RecurrentKLPPO
    from sb3_npg.npg_recurrent import RecurrentNPG

__all__ = ["KLPPO", "NPG", "RecurrentKLPPO", "RecurrentNPG", "__version__"]

# The recurrent algorithms need sb3-contrib (pip install "sb3-npg[recurrent]"): imported on first use
_RECURRENT = {"RecurrentNPG": "sb3_npg.npg_recurrent", "RecurrentKLPPO": "sb3_npg.klppo_recurrent"}


def __getattr__(name: str) -> Any:
    if name in _RECURRENT:
        import importlib

        try:
            module = importlib.import_module(_RECURRENT[name])
        except ImportError as error:
            raise ImportError(f'{name} needs sb3-contrib: pip install "sb3-npg[recurrent]"') from error
        return getattr(module, name)
    raise AttributeError(f"module 'sb3_npg' has no attribute {name!r}")
