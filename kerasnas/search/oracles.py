"""keras-tuner oracles whose trials are architectures of a search space.

Each oracle declares one `keras_tuner` `Choice` hyperparameter per label of
the space, with the option names as values, so a trial's
`hyperparameters.values` *is* the architecture dict. Everything keras-tuner
gives an oracle keeps working: trials saved as files, `overwrite=False`
resume, retries, and the chief/worker distributed mode.
"""

import numbers

import numpy as np
import keras_tuner
from keras_tuner.engine import trial as trial_module

from kerasnas.api_export import kerasnas_export
from kerasnas.search.constraints import Constraints
from kerasnas.spaces import SearchSpace

RUNNING = trial_module.TrialStatus.RUNNING
STOPPED = trial_module.TrialStatus.STOPPED
COMPLETED = trial_module.TrialStatus.COMPLETED

# Spaces up to this size are enumerated to count the architectures that
# satisfy the constraints (NAS-Bench-201: 15,625, about a second).
ENUMERATE_LIMIT = 200_000
# Random architectures tried to find a feasible one in larger spaces.
FEASIBILITY_PROBES = 2_000


class ArchOracle(keras_tuner.Oracle):
    """Base class: an oracle that proposes architectures of `space`.

    Subclasses implement `_propose(rng) -> arch or None`. The base class
    never lets a trial run an architecture that was already tried (or is
    running) or that violates the constraints: a rejected proposal is
    replaced (up to `max_proposals` times, then by a random architecture
    not yet tried), and the search stops when every feasible architecture
    has been tried. Randomness is a function of `(seed, trial number)`, so
    a resumed search proposes what the uninterrupted one would have.

    Args:
        space: the `kerasnas.spaces.SearchSpace`.
        constraints: a `kerasnas.search.Constraints`, or None.
        objective: the metric to optimize (default `"val_accuracy"`, to
            maximize); the tuner may set it.
        max_trials: number of architectures to evaluate (None: until the
            feasible space is exhausted).
        seed: int seed of the proposals.
        max_proposals: proposals tried per trial before falling back to a
            random untried architecture.
        **kwargs: passed to `keras_tuner.Oracle` (`max_retries_per_trial`,
            `max_consecutive_failed_trials`).

    Raises:
        ValueError: if no architecture of the space satisfies the
            constraints (counted exactly in spaces of up to 200,000
            architectures, probed with 2,000 random ones beyond).
    """

    def __init__(
        self,
        space,
        constraints=None,
        objective=None,
        max_trials=None,
        seed=None,
        max_proposals=100,
        **kwargs,
    ):
        if not isinstance(space, SearchSpace):
            raise ValueError(
                "Invalid value for argument `space`. Expected a "
                f"kerasnas.spaces.SearchSpace. Received: space={space!r}"
            )
        if constraints is None:
            constraints = Constraints()
        if not isinstance(constraints, Constraints):
            raise ValueError(
                "Invalid value for argument `constraints`. Expected None or a "
                f"kerasnas.search.Constraints. Received: constraints={constraints!r}"
            )
        _check_int("max_trials", max_trials, minimum=1, allow_none=True)
        _check_int("seed", seed, minimum=0, allow_none=True)
        _check_int("max_proposals", max_proposals, minimum=1)
        hyperparameters = keras_tuner.HyperParameters()
        for label, options in space.choices.items():
            hyperparameters.Choice(label, list(options))
        super().__init__(
            objective=objective or "val_accuracy",
            max_trials=max_trials,
            hyperparameters=hyperparameters,
            allow_new_entries=False,
            tune_new_entries=False,
            # keras-tuner replaces a seed of 0 by a draw from Python's global
            # `random` (moving its state): give it any non-zero seed, then
            # set ours.
            seed=1 if seed == 0 else seed,
            **kwargs,
        )
        if seed is not None:
            self.seed = self._seed_state = int(seed)
        self.space = space
        self.constraints = constraints
        self.max_proposals = int(max_proposals)
        self.feasible_count = self._count_feasible()

    # === Feasibility ===
    def is_feasible(self, arch):
        """True when `arch` satisfies the constraints."""
        return self.constraints.is_satisfied(self.space, arch)

    def _count_feasible(self):
        """Feasible architectures: exact count, or None if unknown (large)."""
        size = len(self.space)
        if self.constraints.empty:
            return size
        if size <= ENUMERATE_LIMIT:
            count = sum(1 for arch in self.space.enumerate() if self.is_feasible(arch))
            where = f"any of the {size} architectures of the space"
        else:
            rng = np.random.default_rng(self.seed)
            count = next(
                (None for _ in range(FEASIBILITY_PROBES) if self.is_feasible(self.space.sample(rng))),
                0,
            )
            where = f"any of {FEASIBILITY_PROBES} random architectures of the space"
        if count == 0:
            raise ValueError(
                f"Invalid value for argument `constraints`. Expected constraints "
                f"that some architecture satisfies. Received: {self.constraints!r}, "
                f"not satisfied by {where}{self._cost_ranges()}"
            )
        return count

    def _cost_ranges(self):
        rng = np.random.default_rng(0)
        sample = [self.space.sample(rng) for _ in range(200)]
        parts = []
        c = self.constraints
        for what, cost, bounds in (("params", self.space.params, (c.min_params, c.max_params)),
                                   ("flops", self.space.flops, (c.min_flops, c.max_flops))):
            if bounds == (None, None):
                continue
            values = [float(cost(a)) for a in sample]
            parts.append(f"{what} {min(values):.4g}..{max(values):.4g}")
        return f" (200 random architectures span {', '.join(parts)})" if parts else ""

    # === Proposals ===
    def _propose(self, rng):
        """An architecture dict to try next (may be a duplicate or
        infeasible: the base class filters), or None."""
        raise NotImplementedError

    def _acceptable(self, arch):
        return arch is not None and not self._duplicate(arch) and self.is_feasible(arch)

    def populate_space(self, trial_id):
        if self.feasible_count is not None and len(self._tried_so_far) >= self.feasible_count:
            return {"status": STOPPED, "values": None}
        rng = np.random.default_rng([self.seed, len(self.trials)])
        for _ in range(self.max_proposals):
            arch = self._propose(rng)
            if self._acceptable(arch):
                return {"status": RUNNING, "values": dict(arch)}
        arch = self._random_untried(rng)
        if arch is None:
            return {"status": STOPPED, "values": None}
        return {"status": RUNNING, "values": arch}

    def _random_untried(self, rng):
        for _ in range(1000):
            arch = self.space.sample(rng)
            if self._acceptable(arch):
                return arch
        if len(self.space) <= ENUMERATE_LIMIT:
            left = [a for a in self.space.enumerate() if self._acceptable(a)]
            if left:
                return left[int(rng.integers(len(left)))]
        return None

    def _check_consecutive_failures(self):
        """keras-tuner fails a trial whose score is NaN and stops the search
        after `max_consecutive_failed_trials` failures in a row with a bare
        RuntimeError: when those failures are NaN scores, say so."""
        try:
            super()._check_consecutive_failures()
        except RuntimeError as error:
            last = [self.trials[t] for t in self.end_order[-self.max_consecutive_failed_trials:]]
            if last and all(t.score is not None and not np.isfinite(t.score) for t in last):
                raise FloatingPointError(
                    f"Search stopped: the last {len(last)} trials in a row scored "
                    f"{last[-1].score} ({self.objective.name}). Check that the "
                    "supernet's weights are finite (its training may have "
                    "diverged) and that the validation data holds no NaN."
                ) from error
            raise

    # === Results ===
    def completed_trials(self):
        """Completed trials with a finite score, in the order they ended."""
        out = []
        for trial_id in self.end_order:
            trial = self.trials[trial_id]
            if trial.status == COMPLETED and trial.score is not None and np.isfinite(trial.score):
                out.append(trial)
        return out

    def _better(self, a, b):
        """True when trial `a` scores better than trial `b`."""
        if self.objective.direction == "max":
            return a.score > b.score
        return a.score < b.score

    # === Resume ===
    def reload(self):
        super().reload()
        # A trial written to disk just before a kill, while the oracle's own
        # file was not, runs again instead of being lost.
        for trial_id, trial in self.trials.items():
            if trial.status == RUNNING and trial_id not in self._retry_queue:
                self._retry_queue.append(trial_id)
                self._record_values(trial)

    def get_state(self):
        state = super().get_state()
        state["space"] = self.space.get_config()
        return state

    def set_state(self, state):
        saved = state.get("space")
        if saved is not None and saved != _json_round_trip(self.space.get_config()):
            raise RuntimeError(
                "Error reloading the oracle: the project was searched in another "
                f"space ({saved}) than this oracle's ({self.space.get_config()}). "
                "Change the `project_name` or pass `overwrite=True`."
            )
        super().set_state(state)


@kerasnas_export("kerasnas.search.RandomArchOracle")
class RandomArchOracle(ArchOracle):
    """Random search: uniformly random architectures, never one twice.

    Args:
        space: the `kerasnas.spaces.SearchSpace`.
        constraints: a `kerasnas.search.Constraints`, or None.
        max_trials: number of architectures to evaluate.
        seed: int seed.
        **kwargs: see `ArchOracle`.
    """

    def __init__(self, space, constraints=None, max_trials=None, seed=None, **kwargs):
        super().__init__(space, constraints=constraints, max_trials=max_trials, seed=seed, **kwargs)

    def _propose(self, rng):
        return self.space.sample(rng)


@kerasnas_export("kerasnas.search.EvolutionOracle")
class EvolutionOracle(ArchOracle):
    """Regularized (ageing) tournament evolution with mutation and crossover.

    Real et al.'s regularized evolution, asynchronous as keras-tuner runs
    trials: the first `population_size` trials are random architectures;
    after that the population is the `population_size` most recently
    completed trials (the oldest dies when a new one completes: ageing).
    Each new architecture comes from tournaments: `sample_size` members
    drawn at random, the best is a parent. With probability
    `crossover_prob` (when `crossover`), two tournament winners are
    crossed (each label from either parent) and the result mutated;
    otherwise one winner is mutated. A mutation resamples each label with
    probability `mutation_prob` to a different option, and changes at
    least one label. Duplicates and architectures that violate the
    constraints are never proposed. As the search never waits for running
    trials, it works unchanged with many workers.

    This is the SPOS / PA&DA / DCNAS evolutionary search (population 50,
    parents from the top of the population, mutation and crossover) in the
    regularized form; with `population_size=50, sample_size=10` the
    tournaments pick from roughly the top fifth, as SPOS' top-10 of 50.

    Reference:
        Real et al., "Regularized Evolution for Image Classifier
        Architecture Search", AAAI 2019; Guo et al., "Single Path One-Shot
        Neural Architecture Search with Uniform Sampling", ECCV 2020.

    Args:
        space: the `kerasnas.spaces.SearchSpace`.
        population_size: size of the population (and of the random start).
        sample_size: tournament size (1 <= sample_size <= population_size).
        mutation_prob: per-label resampling probability of a mutation.
        crossover: whether to also make children by crossover.
        crossover_prob: share of the children made by crossover.
        constraints: a `kerasnas.search.Constraints`, or None.
        max_trials: number of architectures to evaluate.
        seed: int seed.
        **kwargs: see `ArchOracle`.

    Raises:
        ValueError: on a bad argument, or a population larger than the
            number of architectures that satisfy the constraints.
    """

    def __init__(
        self,
        space,
        population_size=50,
        sample_size=10,
        mutation_prob=0.1,
        crossover=True,
        crossover_prob=0.5,
        constraints=None,
        max_trials=None,
        seed=None,
        **kwargs,
    ):
        _check_int("population_size", population_size, minimum=2)
        _check_int("sample_size", sample_size, minimum=1)
        if sample_size > population_size:
            raise ValueError(
                "Invalid value for argument `sample_size`. Expected at most "
                f"population_size={population_size}. Received: sample_size={sample_size}"
            )
        for name, value in (("mutation_prob", mutation_prob), ("crossover_prob", crossover_prob)):
            if not isinstance(value, numbers.Real) or not 0.0 <= value <= 1.0:
                raise ValueError(
                    f"Invalid value for argument `{name}`. Expected a probability "
                    f"in [0, 1]. Received: {name}={value!r}"
                )
        self.population_size = int(population_size)
        self.sample_size = int(sample_size)
        self.mutation_prob = float(mutation_prob)
        self.crossover = bool(crossover)
        self.crossover_prob = float(crossover_prob)
        super().__init__(space, constraints=constraints, max_trials=max_trials, seed=seed, **kwargs)
        available = self.feasible_count if self.feasible_count is not None else len(space)
        if self.population_size > available:
            raise ValueError(
                "Invalid value for argument `population_size`. Expected at most "
                f"the number of architectures to choose from ({available}"
                f"{' satisfying the constraints' if not self.constraints.empty else ''}). "
                f"Received: population_size={self.population_size}"
            )

    def population(self):
        """The current population: the last `population_size` completed
        trials (fewer while the random start is running)."""
        return self.completed_trials()[-self.population_size:]

    def populate_space(self, trial_id):
        self._current = self.population()  # once per trial, not per proposal
        try:
            return super().populate_space(trial_id)
        finally:
            self._current = None

    def _propose(self, rng):
        population = getattr(self, "_current", None) or self.population()
        if len(population) < self.population_size:
            return self.space.sample(rng)
        if self.crossover and rng.random() < self.crossover_prob:
            first = self._tournament(population, rng)
            second = self._tournament(population, rng)
            child = {
                label: (first if rng.random() < 0.5 else second)[label]
                for label in self.space.labels
            }
            return self.mutate(child, rng, force=False)
        return self.mutate(self._tournament(population, rng), rng, force=True)

    def _tournament(self, population, rng):
        picks = rng.choice(len(population), size=self.sample_size, replace=False)
        best = population[picks[0]]
        for i in picks[1:]:
            if self._better(population[i], best):
                best = population[i]
        return dict(best.hyperparameters.values)

    def mutate(self, arch, rng, force=True):
        """`arch` with each label resampled (to another option) with
        probability `mutation_prob`; with `force`, at least one label
        changes (when some label has two options)."""
        child = dict(arch)
        choices = self.space.choices
        mutable = [label for label, options in choices.items() if len(options) > 1]
        changed = False
        for label in mutable:
            if rng.random() < self.mutation_prob:
                child[label] = _other_option(choices[label], child[label], rng)
                changed = True
        if force and not changed and mutable:
            label = mutable[int(rng.integers(len(mutable)))]
            child[label] = _other_option(choices[label], child[label], rng)
        return child

    def get_state(self):
        state = super().get_state()
        state.update(
            population_size=self.population_size,
            sample_size=self.sample_size,
            mutation_prob=self.mutation_prob,
            crossover=self.crossover,
            crossover_prob=self.crossover_prob,
        )
        return state


def _other_option(options, current, rng):
    others = [o for o in options if o != current]
    return others[int(rng.integers(len(others)))]


def _check_int(name, value, minimum, allow_none=False):
    if value is None and allow_none:
        return
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
        raise ValueError(
            f"Invalid value for argument `{name}`. Expected an int >= {minimum}"
            f"{' or None' if allow_none else ''}. Received: {name}={value!r}"
        )


def _json_round_trip(config):
    import json

    return json.loads(json.dumps(config))
