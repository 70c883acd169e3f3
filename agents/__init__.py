"""metagym's meta-RL agents (installed as ``metagym.agents``); they need the ``agents`` extra."""
