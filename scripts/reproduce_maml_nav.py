"""MAML on 2-D navigation (Finn et al. 2017, section 5.3), with the paper's controls, one run.

Meta-trains MAML and the "pretrained" control (one policy trained on all tasks) for the same
env-step budget, then evaluates both, the random-initialisation control and the references
on the same 40 held-out goals after 0, 1, 2 and 3 gradient steps (40 episodes per step), with
the reference code's settings (normalised actions, inner step 0.5). MAML is not tuned: its
settings are the MAML code's. The pretrained control's fine-tuning step size is chosen on
``validation`` goals from ``CONTROL_STEPS`` (with MAML's 0.5 it diverges: its policy's std has
shrunk to ~0.17, so the same step moves it ~35x further), then ``test`` is scored once.

    python scripts/reproduce_maml_nav.py               # about 15 minutes on 2 CPU cores
    python scripts/reproduce_maml_nav.py --steps 2000000
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from metagym.agents.maml import MAMLAgent, MAMLConfig, Trainer
from metagym.evaluation import evaluate, write

PAPER = {
    "MAML": [-40.41, -11.68, -3.33, -3.23],
    "pretrained": [-40.81, -19.73, -11.72, -8.47],
    "random initialisation": [-82.66, -57.96, -53.84, -46.81],
    "oracle": [-2.29] * 4,
}
#: Fine-tuning step sizes tried for the pretrained control, on validation goals.
CONTROL_STEPS = (0.5, 0.1, 0.05, 0.02, 0.01, 0.005)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=6_000_000, help="env steps for each of MAML and pretrained")
    parser.add_argument("--tasks", type=int, default=40, help="held-out goals")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run-dir", default="runs/reproduce-maml-nav")
    parser.add_argument(
        "--evaluate-only", action="store_true", help="score the runs already trained in --run-dir (no training)"
    )
    args = parser.parse_args()
    root = Path(args.run_dir)
    results = {}
    for variant in ("maml", "pretrained"):
        if args.evaluate_only:
            agent = MAMLAgent.load(root / variant)
        else:
            tic = time.perf_counter()
            trainer = Trainer(MAMLConfig(variant=variant, total_steps=args.steps, seed=args.seed), root / variant)
            trainer.run()
            agent = trainer.agent
            print(
                f"{variant}: {trainer.global_step:,} steps, {trainer.update} iterations, "
                f"{(time.perf_counter() - tic) / 60:.1f} min"
            )
        if variant == "pretrained":  # choose the control's fine-tuning step on validation
            scores = {}
            for lr in CONTROL_STEPS:
                agent.config = dataclasses.replace(agent.config, inner_lr=lr)
                returns = evaluate(agent, "validation", args.tasks, args.seed)["episode_returns"]["mean"]
                scores[lr] = sum(returns[1:]) / 3  # mean return after 1 to 3 steps
                print(f"pretrained, fine-tuning step {lr}: validation {scores[lr]:.2f} (mean after 1-3 steps)")
            best = max(scores, key=lambda lr: scores[lr])
            agent.config = dataclasses.replace(agent.config, inner_lr=best)
            print(f"chose {best} on validation")
        results[variant] = evaluate(agent, "test", args.tasks, args.seed, name=variant)
    write(results["maml"], root / "results.json", compare=[results["pretrained"]])

    ours = {
        "MAML": results["maml"]["episode_returns"]["mean"],
        "pretrained": results["pretrained"]["episode_returns"]["mean"],
        "random initialisation": results["maml"]["references"]["random_init"]["mean"],
        "oracle": results["maml"]["references"]["oracle"]["mean"],
    }
    print(f"\nPointNav2D-v0, {args.tasks} held-out goals, mean return after k gradient steps (paper in brackets)\n")
    print("| policy | 0 | 1 | 2 | 3 |\n|---|---:|---:|---:|---:|")
    for name, row in ours.items():
        cells = " | ".join(f"{v:.1f} ({p})" for v, p in zip(row, PAPER[name], strict=True))
        print(f"| {name} | {cells} |")
    print("(our oracle walks straight to the goal; the paper's was a policy trained with the goal as input)")
    maml = ours["MAML"]
    print(
        f"\nMAML after 1 step {maml[1]:.1f} (the paper: -11.68), gain over 0 steps {maml[1] - maml[0]:.1f};"
        f" pretrained after 1 step {ours['pretrained'][1]:.1f}"
    )


if __name__ == "__main__":
    main()
