"""metagym: meta-reinforcement-learning task families, agents and evaluation for Gymnasium.

``import metagym`` registers every environment id with Gymnasium; it imports neither torch nor
any family module (their entry points are strings).
"""

from metagym.registration import env_ids, families, register_envs, register_family, trial_id
from metagym.tasks import SPLITS, Param, Task, TaskFamily

__version__ = "0.1.0"
__all__ = [
    "SPLITS",
    "Param",
    "Task",
    "TaskFamily",
    "__version__",
    "env_ids",
    "families",
    "register_envs",
    "register_family",
    "trial_id",
]

register_envs()
