import os

import pytest

from nas.spec import DEFAULT_SAMPLER, JobSpec, SpecError, load_spec


def test_defaults_are_the_embedded_default_job():
    spec = load_spec({})
    assert spec.space == "metaformer" and spec.accelerator == "metis-like"
    assert spec.objectives == ("accuracy", "latency_ms", "energy_mj")
    assert spec.sampler == DEFAULT_SAMPLER and spec.constraints.deployable_only


def test_a_yaml_file_round_trips(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text(
        "name: x\nspace: metaformer-tiny\nconstraints: {min_fps: 800, max_energy_mj: 3}\n"
        "evaluator: {plugin: 'pkg.mod:Eval', options: {k: 1}}\nbudget: {trials: 5}\n"
    )
    spec = load_spec(path)
    assert spec.constraints.min_fps == 800 and spec.evaluator.plugin == "pkg.mod:Eval"
    assert JobSpec.model_validate_json(spec.to_json()) == spec


def test_overrides_replace_top_level_keys():
    assert load_spec({"seed": 1}, seed=7, name=None).seed == 7


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"budget": {"trails": 3}}, "budget.trails: Extra inputs are not permitted"),
        ({"sampelr": "tpe"}, "sampelr: Extra inputs are not permitted; did you mean `sampler`?"),
        (
            {"constraints": {"max_energy_mJ": 3}},
            "max_energy_mJ: Extra inputs are not permitted; did you mean `max_energy_mj`?",
        ),
        (
            {"evaluator": {"proxy": "default", "train": {"finall": 1}}},
            "evaluator.train.finall: Extra inputs are not permitted; did you mean `final`?",
        ),
        ({"space": {"plugin": "not a path"}}, "space.plugin: 'not a path' is not an import path"),
        ({"evaluator": {"proxy": "default", "res": 3}}, "evaluator.res: Extra inputs"),
        ({"objectives": ["acc"]}, "objectives: unknown objective 'acc'"),
        ({"objectives": ["accuracy", "accuracy"]}, "objectives: an objective is listed twice"),
        ({"sampler": "cmaes"}, "sampler: Input should be 'tpe'"),
        ({"budget": {"trials": None}}, "budget: set trials, wall_time_s or both"),
        ({"input_shape": [3, 0, 224]}, "input_shape: every size must be >= 1"),
        ({"constraints": {"min_fps": -1}}, "constraints.min_fps: Input should be greater than 0"),
        ({"reference_point": {"params": 1e6}}, "reference_point: params is not among the objectives"),
        ({"workers": {"count": -1}}, "workers.count: Input should be greater than or equal to 0"),
        (
            {"evaluator": {"plugin": "mod:json.codecs.builtins.open"}},
            "evaluator.plugin: 'mod:json.codecs.builtins.open' is",
        ),
        ({"evaluator": {"plugin": "builtins:__import__"}}, "evaluator.plugin: 'builtins:__import__' is not an import"),
        ({"evaluator": {"plugin": "mod:Eval\n"}}, "evaluator.plugin: 'mod:Eval\\n' is not an import path"),
        ({"tags": ["t"] * 33}, "tags: Tuple should have at most 32 items"),
        ({"reference_point": {"accuracy": float("nan")}}, "reference_point.accuracy: Input should be a finite number"),
        ({"seed": 2**40}, "seed: Input should be less than 2147483648"),
        # INT8 is measured on the networks a job trains: a job that trains none cannot bound or rank by it
        ({"evaluator": {"proxy": "default", "train": 0}, "constraints": {"max_int8_drop": 0.01}},
         "constraints.max_int8_drop: INT8 accuracy is measured on the networks a job trains"),
        ({"evaluator": {"plugin": "mod:Eval"}, "objectives": ["accuracy_int8", "latency_ms"]},
         "objectives: INT8 accuracy is measured on the networks a job trains"),
        ({"constraints": {"max_int8_drop": 1.5}}, "constraints.max_int8_drop: Input should be less than or equal to 1"),
    ],
)  # fmt: skip
def test_errors_name_the_field(data, message):
    with pytest.raises(SpecError) as err:
        load_spec(data)
    assert message in str(err.value)
    assert "function-after" not in str(err.value) and ".PluginRef" not in str(err.value)


def test_unreadable_and_malformed_files_name_the_file(tmp_path):
    with pytest.raises(SpecError, match="cannot read the job spec"):
        load_spec(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(SpecError, match=r"bad\.yaml: not valid YAML"):
        load_spec(bad)
    scalar = tmp_path / "scalar.json"
    scalar.write_text("3")
    with pytest.raises(SpecError, match="a job spec is a mapping"):
        load_spec(scalar)


def test_ray_address_comes_from_the_spec_then_the_environment(monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    assert load_spec({}).ray_address() == "10.0.0.1:6379"
    assert load_spec({"workers": {"address": "h:1"}}).ray_address() == "h:1"


def test_a_bare_word_names_a_shipped_entry_and_never_opens_a_file(tmp_path, monkeypatch):
    """A name is looked up among the shipped files only: a file of that name in the working
    directory (a database, a token file) is neither opened nor reported (issue 20)."""
    import hwmodels
    import search_spaces

    monkeypatch.chdir(tmp_path)
    os.mkfifo(tmp_path / "trap")  # opening it would block this test forever
    (tmp_path / "secret").write_text("token: tok_secret\n")
    for name in ("trap", "secret"):
        with pytest.raises(hwmodels.AcceleratorError, match=f"unknown accelerator '{name}'") as err:
            hwmodels.load_accelerator(name)
        assert "tok_secret" not in str(err.value)
        with pytest.raises(search_spaces.UnknownNameError, match=f"unknown search space '{name}'"):
            search_spaces.get_space(name)
    (tmp_path / "chip.yaml").write_text("base: metis-like\ncores: 2\n")  # a path is the caller's own file
    assert hwmodels.load_accelerator("chip.yaml").chip.cores == 2


def test_an_unknown_key_far_from_every_name_gets_no_guess():
    with pytest.raises(SpecError) as err:
        load_spec({"colour": "red"})
    assert str(err.value) == "colour: Extra inputs are not permitted"


def test_a_job_that_trains_may_rank_and_bound_by_int8_accuracy():
    spec = load_spec({"objectives": ["accuracy_int8", "latency_ms"], "constraints": {"max_int8_drop": 0.01}})
    assert spec.accuracy_kind() == "predicted" and spec.constraints.max_int8_drop == 0.01
