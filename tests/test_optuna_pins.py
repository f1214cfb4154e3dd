"""The private parts of Optuna we rely on, pinned: if an upgrade moves them, these fail first and
say where (instead of a search failing mid-run)."""

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState


def test_the_exact_hypervolume_nas_pareto_uses():
    from optuna._hypervolume import compute_hypervolume  # nas/pareto.py

    points = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    assert compute_hypervolume(points, np.array([2.0, 2.0, 1.0])) == pytest.approx(3.0)  # two 2x1 boxes, 1x1 shared


def test_a_running_trial_can_be_taken_up_by_its_id_after_a_crash():
    """The search loop settles the trials a dead run left RUNNING (``_Loop._reap``): it rebuilds a
    Trial from the frozen one's ``_trial_id`` to set its constraints before telling it."""
    study = optuna.create_study(directions=["minimize"])
    left = study.ask()
    frozen = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))[0]
    again = optuna.Trial(study, frozen._trial_id)
    again.set_constraint("max_params", -0.5)
    study.tell(again, [1.0])
    done = study.get_trials()[0]
    assert done.number == left.number and done.state == TrialState.COMPLETE
    assert done.constraints == {"max_params": -0.5}


def test_every_sampler_a_spec_may_name_is_built():
    from nas.search._samplers import FACTORIES, make_sampler
    from nas.spec import SAMPLERS

    assert tuple(FACTORIES) == SAMPLERS
    assert all(isinstance(make_sampler(name, seed=0), optuna.samplers.BaseSampler) for name in SAMPLERS)
