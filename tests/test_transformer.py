"""The in-context transformer: its cache, its window, determinism, exact resume, the CLI, learning."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from gymnasium import spaces  # noqa: E402
from helpers import DEPENDENT_BANDITS, assert_trains_deterministically_and_resumes_exactly, dependent_bandit_results  # noqa: E402

from metagym.agents.common.trainer import Trainer  # noqa: E402
from metagym.agents.transformer import Transformer, TransformerConfig, TransformerNetwork  # noqa: E402

TINY = {"num_envs": 8, "rollout_steps": 10, "d_model": 16, "num_heads": 2, "num_minibatches": 2, "update_epochs": 2}


def tiny(**kwargs) -> TransformerConfig:  # type: ignore[no-untyped-def]
    return TransformerConfig(**{"env_id": "MetaBandit-v0", "total_steps": 8 * 10 * 4, **TINY, **kwargs})


def params(trainer: Trainer) -> list[np.ndarray]:
    return [p.detach().numpy().copy() for p in trainer.agent.network.parameters()]


def random_trials(t_len: int, n: int, dim: int, seed: int, trials: str = "random") -> tuple[torch.Tensor, torch.Tensor]:
    """Observations and trial starts of ``n`` streams, one trial starting at 0: ``trials``
    "random" lengths, "aligned" (every stream starts one every 10 steps: the shared-mask and
    same-slot paths) or "one" (a single trial: the causal kernel's path)."""
    rng = np.random.default_rng(seed)
    starts = (rng.random((t_len, n)) < 0.08).astype(np.float32)
    if trials != "random":
        starts[:] = 0.0
        starts[:: 10 if trials == "aligned" else t_len] = 1.0
    starts[0] = 1.0
    return torch.as_tensor(rng.normal(size=(t_len, n, dim)).astype(np.float32)), torch.as_tensor(starts)


def network(context: int, layers: int = 2, seed: int = 0, mlp_embedding: bool = False) -> TransformerNetwork:
    torch.manual_seed(seed)
    return TransformerNetwork(6, spaces.Discrete(3), 32, layers, 4, context, mlp_embedding=mlp_embedding).eval()


@pytest.mark.parametrize(
    ("context", "trials", "mlp_embedding"),
    [
        (64, "random", False),
        (7, "random", False),
        (1, "random", False),
        (64, "aligned", False),
        (7, "aligned", False),
        (64, "one", False),
        (7, "one", False),
        (7, "random", True),
    ],
)
def test_the_cached_step_equals_the_full_causal_pass(context: int, trials: str, mlp_embedding: bool) -> None:
    """One step at a time through the key/value cache, in chunks from a stored cache, and in one
    pass: the same features, across trial starts mid-sequence and with a window shorter than
    the trials (context 7) or none at all (context 1: each step sees itself alone); with trials
    of random lengths, trials in step across the streams, and one trial per stream."""
    net = network(context, mlp_embedding=mlp_embedding)
    assert isinstance(net.embed, torch.nn.Sequential) == mlp_embedding
    obs, starts = random_trials(60, 5, 6, seed=context, trials=trials)
    state = torch.as_tensor(net.initial_state(5))
    with torch.no_grad():
        full, _ = net.unroll(obs, state, starts)
        h, stepped = state.clone(), []
        for t in range(60):
            f, h = net.step(obs[t : t + 1], h, starts[t : t + 1])
            stepped.append(f)
        h2, chunks = state.clone(), []
        for a in range(0, 60, 13):  # 13 does not divide the trials: chunks start mid-trial
            f, h2 = net.unroll(obs[a : a + 13], h2, starts[a : a + 13])
            chunks.append(f)
        # A stepped state and a chunked one hold the same trial: the next step agrees.
        nxt = torch.randn(1, 5, 6, generator=torch.Generator().manual_seed(0))
        f_step, _ = net.step(nxt, h.clone(), torch.zeros(1, 5))
        f_chunk, _ = net.unroll(nxt, h2, torch.zeros(1, 5))
    np.testing.assert_allclose(torch.cat(stepped).numpy(), full.numpy(), atol=2e-5)
    np.testing.assert_allclose(torch.cat(chunks).numpy(), full.numpy(), atol=2e-5)
    np.testing.assert_allclose(f_step.numpy(), f_chunk.numpy(), atol=2e-5)
    assert f_step.abs().sum() > 0 and not torch.allclose(full[1:], full[:-1])  # features vary


@pytest.mark.parametrize("trials", ["random", "aligned", "one"])
def test_fused_attention_equals_the_explicit_form(trials: str) -> None:
    """Without dropout the sequence pass runs PyTorch's fused attention (its causal kernel for one
    whole trial per stream); with dropout, the explicit softmax that dropout needs. At a
    dropout rate that keeps every weight, both give the same features."""
    net = network(64)
    obs, starts = random_trials(60, 5, 6, seed=3, trials=trials)
    state = torch.as_tensor(net.initial_state(5))
    with torch.no_grad():
        fused = net.features(obs, state, starts)
        net.train()
        net.dropout = 1e-30  # the explicit path; no weight is dropped at this rate
        explicit = net.features(obs, state, starts)
    np.testing.assert_allclose(fused.numpy(), explicit.numpy(), atol=2e-5)


def test_within_its_context_a_step_sees_its_trial_and_nothing_else() -> None:
    """With the context longer than every trial, each step's features equal those of its own
    trial run alone from a fresh state: nothing leaks across trial starts."""
    net = network(64)
    obs, starts = random_trials(40, 3, 6, seed=1)
    with torch.no_grad():
        full, _ = net.unroll(obs, torch.as_tensor(net.initial_state(3)), starts)
        for e in range(3):
            cuts = [*np.flatnonzero(starts[:, e].numpy()), 40]
            for a, b in itertools.pairwise(cuts):
                fresh = torch.zeros(b - a, 1)
                fresh[0] = 1.0
                alone, _ = net.unroll(obs[a:b, e : e + 1], torch.as_tensor(net.initial_state(1)), fresh)
                np.testing.assert_allclose(alone[:, 0].numpy(), full[a:b, e].numpy(), atol=2e-5)


def test_a_trial_longer_than_the_context_is_windowed_and_said() -> None:
    """A window only forgets: a step's features do not depend on observations more than
    ``layers x (context - 1)`` steps back (each layer looks back context - 1 steps), and they do
    on the ones just inside the window. A run whose trials can be longer says so."""
    net = network(5, layers=1)
    obs, _ = random_trials(30, 1, 6, seed=2)
    starts = torch.zeros(30, 1)
    starts[0] = 1.0
    changed_far, changed_near = obs.clone(), obs.clone()
    changed_far[20] += 1.0  # 25 - 20 = 5 steps back: outside a 5-step window
    changed_near[21] += 1.0  # 4 steps back: inside
    state = torch.as_tensor(net.initial_state(1))
    with torch.no_grad():
        base, far, near = (net.unroll(o, state, starts)[0][25] for o in (obs, changed_far, changed_near))
    np.testing.assert_allclose(far.numpy(), base.numpy(), atol=1e-6)
    assert (near - base).abs().max() > 1e-3
    note = Transformer(tiny(context=4)).note
    assert note is not None and "sliding window" in note and "context 4" in note
    assert Transformer(tiny(context=10)).note is None  # bandit trials: 10 pulls


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"num_heads": 3}, "num_heads: must divide d_model (16)"),
        ({"num_heads": 16}, "heads of even width"),
        ({"context": 0}, "context: expected an integer >= 1"),
        ({"dropout": 1.0}, "dropout: must be in [0, 1)"),
        ({"warmup_updates": -1}, "warmup_updates: expected an integer >= 0"),
    ],
)
def test_bad_configs_fail_clearly(kwargs: dict, words: str) -> None:
    with pytest.raises(ValueError) as error:
        tiny(**kwargs).validate()
    assert words in str(error.value)


def test_predict_leaves_the_callers_state_alone() -> None:
    algorithm = Transformer(tiny())
    agent = algorithm.agent
    obs = np.zeros((4, algorithm.envs.single_observation_space.shape[0]), np.float32)
    state = agent.initial_state(4)
    before = state.copy()
    _, after = agent.predict(obs, state, episode_start=np.ones(4))
    np.testing.assert_array_equal(state, before)
    assert after[0, 0] == 1.0  # the next token's trial position


def test_seeded_training_is_deterministic_and_resumes_exactly(tmp_path: Path) -> None:
    assert_trains_deterministically_and_resumes_exactly(tiny(warmup_updates=2, dropout=0.1), tmp_path)


def test_warm_up_raises_the_learning_rate_then_anneals() -> None:
    algorithm = Transformer(tiny(warmup_updates=3, total_steps=8 * 10 * 8))
    rates = [algorithm.learning_rate(u) for u in range(8)]
    assert rates[0] < rates[1] < rates[2] and rates[2] > rates[3] > rates[7] > 0


def test_cli_trains_evaluates_and_renders_the_transformer(tmp_path: Path) -> None:
    imageio = pytest.importorskip("imageio.v2")
    run, base = tmp_path / "grid", [sys.executable, "-m", "metagym.cli"]
    train = [*base, "train", "--agent", "transformer", "--env", "MetaGrid-GridNavi-v0", "--steps", "2000"]
    small = ["--num-envs", "8", "--rollout-steps", "30", "--d-model", "16", "--num-heads", "2", "--context", "60"]
    subprocess.run([*train, *small, "--run-dir", str(run), "--quiet"], check=True)
    saved = json.loads((run / "config.json").read_text())
    assert saved["d_model"] == 16 and (run / "agent.txt").read_text().strip() == "transformer"
    out = tmp_path / "eval" / "results.json"
    subprocess.run([*base, "evaluate", "--run-dir", str(run), "--tasks", "5", "--out", str(out)], check=True)
    assert json.loads(out.read_text())["episodes_per_trial"] == 4
    gif = tmp_path / "trial.gif"
    subprocess.run([*base, "render", "--run-dir", str(run), "--task-index", "2", "--out", str(gif)], check=True)
    assert len(imageio.mimread(gif)) == 4 * 15


def test_the_transformer_learns_bandits_beyond_random(tmp_path: Path) -> None:
    """A fast learning test (RL²'s, same budget): two-armed dependent bandits, 10 pulls."""
    config = TransformerConfig(**DEPENDENT_BANDITS, d_model=32, context=10)
    dependent_bandit_results(config, tmp_path)
