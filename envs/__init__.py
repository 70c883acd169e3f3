"""metagym's task families, one module each (installed as ``metagym.envs``)."""
