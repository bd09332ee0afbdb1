"""The games' own example trackers, unmodified, as coordinator models, run in-process.

Crunch-Synth's trackers run here in ``.venv``; the Condor Game's inside ``.venv-condor`` (its
package needs Python >= 3.12) through ``game_runner.py`` as a subprocess. All are fed the same
seeded synthetic 1-minute series for crunch_synth's 13 supported assets (3 days of history in
the first tick, then a tick a minute), asked ``predict_all`` for the games' 24 h and 1 h profiles,
and every answer must pass ``validate_multi_resolution`` with the game's component limit.

Determinism (two fresh instances, each in a fresh working directory, same plan):
* ``GaussianStepTracker`` (crunch_synth's example, condorgame's example and benchmark): identical
  answers, bit for bit — numpy mean/std of the stored prices, nothing else.
* ``MyTracker`` (crunch_synth's sub-tracker example): identical once its background training has
  finished (the runner waits for ``subtracker.fitted`` after the first tick). Before that it answers
  with the historical-volatility fallback, and at construction it loads models pickled into
  ``resources/`` of the working directory by an earlier run: its first answers depend on thread
  timing and on the directory it starts in.
"""

from __future__ import annotations

import pytest

from coordinator_core.outputs import (
    CONDOR_MAX_COMPONENTS,
    CRUNCH_SYNTH_MAX_COMPONENTS,
    validate_multi_resolution,
)
from tests.integration.game_runner import run_plan, tracker_class, working_directory
from tests.integration.games_support import GAMES_DIR, requests, run_condor

pytestmark = pytest.mark.filterwarnings("ignore:sorted_dict.iloc is deprecated:DeprecationWarning")

CRUNCH_SYNTH = "crunch_synth.tracker.TrackerBase"


def validate_all(answers: list[dict], limit: int) -> list[dict]:
    asked = requests()
    assert len(answers) == len(asked)
    return [
        validate_multi_resolution(answer, horizon=horizon, steps=steps, max_components=limit)
        for answer, (_, horizon, steps) in zip(answers, asked, strict=True)
    ]


@pytest.fixture(scope="module")
def plan() -> list[dict]:
    from tests.integration.games_support import plan as built

    return list(built())


def test_the_series_and_the_ticks_are_what_the_games_send(plan: list[dict]) -> None:
    first, *rest = [step["tick"] for step in plan if "tick" in step]
    assert sorted(first) == sorted(__import__("crunch_synth").SUPPORTED_ASSETS)
    assert {len(points) for points in first.values()} == {3 * 24 * 60 + 1}  # 3 days of 1-minute prices
    assert all({len(points) for points in tick.values()} == {1} for tick in rest)  # then one point a minute
    assert all(type(ts) is int and type(price) is float for ts, price in first["BTC"])


@pytest.mark.parametrize("name", ["gaussian_step", "subtracker"])
def test_a_crunch_synth_example_runs_in_process_and_its_answers_validate(name: str, plan: list[dict], tmp_path) -> None:
    cls = tracker_class(GAMES_DIR / "crunch_synth" / name, CRUNCH_SYNTH)
    runs = []
    trackers = []
    for run in range(2):
        with working_directory(tmp_path / f"run{run}"):
            tracker = cls()
            runs.append(run_plan(tracker, plan))
            trackers.append(tracker)

    assert cls.__mro__[1].__module__.startswith("crunch_synth.examples.")  # the package's class, as is
    for answers in runs:
        clean = validate_all(answers, CRUNCH_SYNTH_MAX_COMPONENTS)
        assert [list(answer) for answer in answers] == [steps for _, _, steps in requests()]  # int keys in-process
        assert [len(c[300]) for c in clean if 300 in c][:2] == [288, 12]
    assert runs[0] == runs[1]  # deterministic (the sub-tracker: once trained)
    if name == "subtracker":
        sub = trackers[0].subtracker
        assert sub.fitted and set(sub.models[86400]) == set(sub.models[3600]) == set(plan[0]["tick"])
        assert "BTC" in sub.scales  # set only when a trained model answered (not the fallback)
        assert (tmp_path / "run0" / "resources" / "model_86400_BTC.pkl").exists()
        with working_directory(tmp_path / "run0"):
            warm = cls()  # a restart in the same directory starts from the pickled models
        assert set(warm.subtracker.models[86400]) == set(plan[0]["tick"]) and not warm.subtracker.fitted


def test_a_numpy_float64_in_an_answer_is_a_float_and_weights_stay_ints_in_process(plan: list[dict], tmp_path) -> None:
    import numpy as np

    cls = tracker_class(GAMES_DIR / "crunch_synth" / "gaussian_step", CRUNCH_SYNTH)
    with working_directory(tmp_path):
        answer = run_plan(cls(), plan)[0]
    density = answer[300][0]
    scale = density["components"][0]["density"]["params"]["scale"]
    assert type(scale) is np.float64 and isinstance(scale, float)
    assert type(density["components"][0]["weight"]) is int


def test_the_condor_examples_run_inside_the_condor_env_and_their_answers_validate() -> None:
    output = run_condor()

    assert output["python"].startswith("3.12")
    assert output["constants"]["MAX_DISTRIBUTION_COMPONENTS"] == CONDOR_MAX_COMPONENTS
    for profile in output["constants"]["FORECAST_PROFILES"].values():
        assert (profile["horizon"], tuple(profile["steps"])) in {(h, tuple(s)) for _, h, s in requests()}
    assert set(output["results"]) == {"benchmark", "gaussian_step"}
    for name, result in output["results"].items():
        assert result["class"].startswith("condorgame.examples."), name
        assert result["identical"], f"{name}: two runs differ"
        assert result["types"]["keys"] == ["int", "str"]  # step keys are ints in-process
        first, second = result["answers"]
        assert first == second
        validate_all(first, CONDOR_MAX_COMPONENTS)


def test_condors_and_crunch_synths_gaussian_trackers_agree_on_the_same_ticks(plan: list[dict], tmp_path) -> None:
    """Same formula, two packages, two Pythons: the same answers, bit for bit (after JSON)."""
    import json

    cls = tracker_class(GAMES_DIR / "crunch_synth" / "gaussian_step", CRUNCH_SYNTH)
    with working_directory(tmp_path):
        synth = json.loads(json.dumps(run_plan(cls(), plan)))
    condor = run_condor()["results"]
    assert synth == condor["gaussian_step"]["answers"][0] == condor["benchmark"]["answers"][0]
