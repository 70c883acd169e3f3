"""Run tristandeleu/pytorch-maml-rl's train.py unchanged, printing what it computes but never logs.

Its training loop builds each batch's returns (``logs``: the pre-adaptation ``train_returns`` and the
post-adaptation ``valid_returns``) and drops them. This adapter, run by the reference's own venv from
its checkout, wraps the one function that computes them (``get_returns``) to print them with the
env frames trained before that batch, and runs the reference's ``main`` with its own config but
``num-batches`` set to the frames asked for (80,000 frames per batch at most: 20 tasks x 20
episodes x 100 steps, before and after adaptation). One line per batch:

    batch 3: frames 240000, before adaptation -38.21, after 1 step -21.07

    python maml_logging.py --config configs/maml/2d-navigation.yaml --frames 6000000 --seed 0 --out DIR
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
import yaml

sys.path.insert(0, str(Path.cwd()))  # the reference's checkout
import train  # the reference's train.py

FRAMES_PER_BATCH = 20 * 20 * 100 * 2

# Its LinearFeatureBaseline calls torch.lstsq(B, A), which torch 2 (the first with Python 3.11 wheels)
# keeps only as a stub that raises: the same least-squares solution of A X = B from torch.linalg.
torch.lstsq = lambda b, a: (torch.linalg.lstsq(a, b).solution, None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="the reference's config (relative to its checkout)")
    parser.add_argument("--frames", type=int, required=True, help="env frames (a multiple of 80,000)")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--out", required=True, help="where its config and policy.th go")
    parser.add_argument("--num-workers", type=int, default=1)
    args = parser.parse_args()
    if args.frames % FRAMES_PER_BATCH:
        raise SystemExit(f"maml_logging: --frames must be a multiple of {FRAMES_PER_BATCH:,}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    config = yaml.safe_load(Path(args.config).read_text())
    config["num-batches"] = args.frames // FRAMES_PER_BATCH
    budgeted = out / "config.yaml"
    budgeted.write_text(yaml.safe_dump(config))

    seen = {"calls": 0, "frames": 0, "start": 0, "before": 0.0}  # frames so far; this batch's first
    original = train.get_returns

    def get_returns(episodes):  # called for a batch's train episodes, then for its valid episodes
        returns = original(episodes)
        if seen["calls"] % 2 == 0:
            seen["start"], seen["before"] = seen["frames"], float(np.mean(returns))
        else:
            print(
                f"batch {seen['calls'] // 2 + 1}: frames {seen['start']}, before adaptation "
                f"{seen['before']:.4f}, after 1 step {float(np.mean(returns)):.4f}",
                flush=True,
            )
        seen["frames"] += int(sum(int(sum(e.lengths)) for e in episodes))
        seen["calls"] += 1
        return returns

    train.get_returns = get_returns
    train.trange = range  # its progress bar would share our lines (stderr and stdout are one log)
    namespace = argparse.Namespace(
        config=str(budgeted),
        output_folder=str(out),
        seed=args.seed,
        num_workers=args.num_workers,
        use_cuda=False,
        device="cpu",
    )
    train.main(namespace)


if __name__ == "__main__":
    main()
