"""metagym's agents (installed as ``metagym.agents``).

``classic`` (UCB1, Thompson sampling, PSRL) needs only numpy; the learned meta-RL agents need
the ``agents`` extra (torch).
"""
