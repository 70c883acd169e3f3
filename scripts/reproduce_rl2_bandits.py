"""RL² on Bernoulli bandits, n=10, k=5 (RL² Table 1): ``python scripts/reproduce_rl2_bandits.py``."""

import sys

from reproduce_rl2 import main

if __name__ == "__main__":
    sys.argv = [sys.argv[0], "bandits", *sys.argv[1:]]
    main()
