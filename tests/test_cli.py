"""The `nas` command, run as a user runs it: a subprocess of the installed console script."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from search_spaces import ArchConfig, get_preset

NAS = shutil.which("nas") or str(Path(sys.executable).parent / "nas")


def nas(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([NAS, *args], capture_output=True, text=True, timeout=300)
    assert (result.returncode == 0) == ok, result.stderr
    return result


def test_help_lists_every_command():
    from nas.cli import INTERNAL, build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    commands = [name for name in sub.choices if name not in INTERNAL]
    assert {"run", "resume", "train", "cancel", "jobs", "pareto", "show", "export", "serve", "hw"} <= set(commands)
    out = nas("--help").stdout
    usage = out.split("\n\n")[0]
    for name in commands:
        assert name in usage, f"`nas --help`'s usage line omits {name}"
        assert f"\n    {name} " in out, f"`nas --help` does not describe {name}"


def test_space_list():
    out = nas("space", "list").stdout
    assert "metaformer" in out and "caformer_s18" in out
    data = json.loads(nas("space", "list", "--json").stdout)
    assert {p["name"] for p in data["presets"]} >= {"poolformer_s12", "swin_tiny_like"}
    assert next(p for p in data["presets"] if p["name"] == "poolformer_s12")["params"] == 11_915_176


def test_space_sample_json_is_a_list_of_arch_configs():
    out = nas("space", "sample", "metaformer", "--n", "4", "--seed", "3", "--json").stdout
    archs = [ArchConfig.model_validate(a) for a in json.loads(out)]
    assert len(archs) == 4
    assert out == nas("space", "sample", "metaformer", "--n", "4", "--seed", "3", "--json").stdout


def test_space_sample_builds_and_checks():
    out = nas("space", "sample", "metaformer-tiny", "--n", "2", "--build", "--input-size", "32").stdout
    assert "built params" in out and out.count(" ms") == 2


def test_space_show_round_trips_through_a_file(tmp_path):
    text = nas("space", "show", "caformer_s18", "--json").stdout
    assert ArchConfig.from_json(text) == get_preset("caformer_s18")
    path = tmp_path / "arch.json"
    path.write_text(text)
    table = nas("space", "show", str(path)).stdout
    assert "26.34 M params" in table and "attention" in table


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("space", "show", "resnet9000"), "unknown preset 'resnet9000'; known: caformer_s18"),
        (("space", "sample", "nope"), "unknown search space 'nope'; known: metaformer"),
        (("space", "sample", "metaformer", "--n", "-1"), "n: must be >= 0"),
    ],
)
def test_errors_name_the_problem_and_exit_2(args, message):
    result = nas(*args, ok=False)
    assert result.returncode == 2 and message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_arch_file_names_the_field(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"stages": [{"mixer": "attention", "depth": 1, "dim": 48}]}))
    result = nas("space", "show", str(path), ok=False)
    assert "stages.0" in result.stderr and "head_dim: 32 does not divide dim=48" in result.stderr


def test_hw_list():
    out = nas("hw", "list").stdout
    assert "metis-like" in out and "imc-8core-1024" in out and "metis-m2-like" in out


def test_hw_estimate_a_timm_model_as_json():
    data = json.loads(nas("hw", "estimate", "--model", "resnet50", "--json").stdout)
    for key in ("latency_ms", "throughput_fps", "energy_mj", "power_w", "macs", "params", "weight_bytes",
                "deployable", "layers"):  # fmt: skip
        assert key in data, key
    assert data["macs"] == 4_089_184_256 and data["params"] == 25_557_032
    assert data["deployable"] and data["throughput_fps"] > 0 and len(data["layers"]) > 100
    assert {"name", "unit", "time_us", "energy_uj", "weights_in"} <= set(data["layers"][0])


def test_hw_estimate_presets_archs_and_torchvision(tmp_path):
    out = nas("hw", "estimate", "--preset", "caformer_s18", "--top", "5", "--accelerator", "metis-m2-like").stdout
    assert "caformer_s18 on metis-m2-like" in out and "deployable   yes" in out
    path = tmp_path / "arch.json"
    path.write_text(nas("space", "show", "poolformer_s12", "--json").stdout)
    out = nas("hw", "estimate", "--arch", str(path), "--input-size", "128", "--num-classes", "10").stdout
    assert "input 3x128x128" in out
    data = json.loads(nas("hw", "estimate", "--model", "torchvision:squeezenet1_1", "--json").stdout)
    assert data["params"] == 1_235_496


def cells(table_lines: list[str]) -> list[list[str]]:
    """A printed table's rows as cells, cut at the columns of its dashed rule."""
    spans = [m.span() for m in re.finditer(r"-+", table_lines[1])]
    return [[line[a:b].strip() for a, b in spans] for line in table_lines]


def test_hw_estimate_layer_table_has_units_a_static_column_and_the_reports_totals():
    report = json.loads(nas("hw", "estimate", "--preset", "poolformer_s12", "--json").stdout)
    lines = nas("hw", "estimate", "--preset", "poolformer_s12", "--top", "3").stdout.splitlines()
    header, _, *rows = cells(lines[next(i for i, line in enumerate(lines) if line.startswith("layer ")) :])
    assert header[4:10] == ["time us", "energy uJ", "compute uJ", "weights uJ", "activ. uJ", "static uJ"]
    assert len(rows) == 5 and "other layers" in rows[3][0] and rows[4][0] == "total per frame"
    numbers = [[float(v.replace(",", "")) for v in row[4:10]] for row in rows]
    split = report["energy_split_mj"]
    expected = [report["latency_ms"] * 1e3, report["energy_mj"] * 1e3,
                *(split[k] * 1e3 for k in ("compute", "weights", "activations", "static"))]  # fmt: skip
    assert numbers[4] == pytest.approx(expected, abs=0.01)  # the total row is the report's totals
    assert [sum(col) for col in zip(*numbers[:4], strict=True)] == pytest.approx(numbers[4], abs=0.02)
    for row in numbers:  # each row's energy is its parts, static included
        assert row[1] == pytest.approx(sum(row[2:]), abs=0.005)
    out = nas("hw", "estimate", "--preset", "poolformer_s12", "--top", "0").stdout
    assert "latency" in out and "time us" not in out  # --top 0: no layers
    err = nas("hw", "estimate", "--preset", "poolformer_s12", "--top", "-2", ok=False).stderr
    assert "--top -2: give a number of layers >= 0" in err


def test_hw_sweep_prints_plain_numbers():
    out = nas("hw", "sweep", "--preset", "poolformer_s12", "--set", "cores=1,8").stdout
    assert "poolformer_s12 on 2 variants of metis-like" in out
    assert not re.search(r"\de[+-]\d", out)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--preset", "caformer_s18", "--accelerator", "tpu9"), "unknown accelerator 'tpu9'; known: imc-8core-1024"),
        (("--model", "not_a_model_at_all"), "--model: 'not_a_model_at_all' is neither a timm model nor"),
        (("--preset", "caformer_s18", "--batch", "0"), "--batch and --input-size must be >= 1"),
    ],
)
def test_hw_estimate_errors(args, message):
    result = nas("hw", "estimate", *args, ok=False)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_proxy_list_and_score():
    listed = json.loads(nas("proxy", "list", "--json").stdout)
    assert {p["name"] for p in listed} >= {"synflow", "snip", "zico", "params", "flops", "default"}
    assert next(p for p in listed if p["name"] == "synflow")["needs_data"] is False
    out = json.loads(nas("proxy", "score", "--preset", "poolformer_s12", "--names", "synflow,snip", "--batch", "8",
                         "--resolution", "16", "--json").stdout)  # fmt: skip
    assert set(out["scores"]) == {"synflow", "snip"} and out["data"] == "8 fashion-mnist images"


def test_proxy_score_errors_name_the_fix(tmp_path):
    err = nas(
        "proxy", "score", "--preset", "poolformer_s12", "--names", "snip", "--data", str(tmp_path), ok=False
    ).stderr
    assert err.startswith("nas: error: data: no images under") and "ImageFolder" in err
    err = nas("proxy", "score", "--preset", "poolformer_s12", "--names", "snipp", ok=False).stderr
    assert "unknown proxy 'snipp'; known: synflow" in err
    # data-free proxies need no data at all
    out = nas("proxy", "score", "--preset", "poolformer_s12", "--names", "synflow", "--data", str(tmp_path)).stdout
    assert "no data (data-free proxies)" in out


def test_the_cli_starts_without_torch():
    # `nas space` and `nas hw` answer in a fraction of a second; only `nas proxy` commands load torch.
    code = "import sys, nas.cli; nas.cli.build_parser(); assert 'torch' not in sys.modules, 'torch was imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
    import nas.cli.proxy as cli
    import nas.data
    import nas.proxies

    assert (cli.FASHION_MNIST, cli.DEFAULT_NAME) == (nas.data.FASHION_MNIST, nas.proxies.DEFAULT_NAME)


def test_job_control_answers_without_torch_or_ray(sqlite_url):
    # `nas cancel` is typed while a job loads the machine: it must not spend seconds importing the loop
    from test_search import toy_spec

    from nas.search import submit
    from nas.store import Store

    job = submit(Store(sqlite_url), toy_spec(None, {}))
    code = (
        "import sys, nas.cli\n"
        f"for argv in (['jobs'], ['pareto', '{job.id}'], ['cancel', '{job.id}']):\n"
        f"    assert nas.cli.main([*argv, '--db', {sqlite_url!r}]) == 0, argv\n"
        "loaded = {'torch', 'ray'} & set(sys.modules)\n"
        "assert not loaded, f'{loaded} imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert Store(sqlite_url).get_job(job.id).status == "cancelled"
