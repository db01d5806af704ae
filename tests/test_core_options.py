"""Settings declared once: flags, validation and ranges come from the dataclass fields; presets; default folders."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from app.core.modelconfig import ModelConfig, TrainConfig
from app.core.options import add_dataclass_args, bounds, from_args, given, opt, parse_temperatures, validate
from app.core.sampling import SamplingOptions
from app.errors import ModelFolderError, OptionError


@dataclasses.dataclass(frozen=True)
class Demo:
    rate: float = opt(0.5, "a rate", lo=0.0, hi=1.0, lo_open=True)
    count: int = opt(3, "how many", lo=1, hi=10, flag=("-c", "--count"))
    mode: str = opt("a", "a mode", choices=("a", "b"))
    fast: bool = opt(False, "go fast")
    hidden: int = opt(7, "not a flag", cli=False)

    def __post_init__(self):
        validate(self)


def parse(cls, argv, **kw):
    p = argparse.ArgumentParser()
    add_dataclass_args(p, cls, **kw)
    return p, p.parse_args(argv)


def test_flags_types_and_defaults_come_from_the_fields():
    p, args = parse(Demo, ["--rate", "0.25", "-c", "4", "--mode", "b", "--fast"])
    assert from_args(Demo, args) == Demo(rate=0.25, count=4, mode="b", fast=True)
    _, none = parse(Demo, [])
    assert given(Demo, none) == {} and from_args(Demo, none) == Demo()
    assert "--hidden" not in p.format_help()
    with pytest.raises(SystemExit):
        parse(Demo, ["--mode", "c"])


def test_help_shows_each_default_once():
    p = argparse.ArgumentParser()
    add_dataclass_args(p, ModelConfig, defaults=ModelConfig(units=99), default_label="preset x")
    text = " ".join(p.format_help().split())
    assert "(preset x: 99)" in text and text.count("default") == 0


@pytest.mark.parametrize("kw,match", [({"rate": 0.0}, r"rate must be in \(0.0, 1.0\]"), ({"rate": float("nan")},
                                      "finite"), ({"count": 2.5}, "whole number"), ({"count": 11}, "count"),
                                      ({"mode": "z"}, "mode must be one of a, b"), ({"rate": "x"}, "number")])
def test_validation_comes_from_the_metadata(kw, match):
    with pytest.raises(OptionError, match=match):
        Demo(**kw)


def test_bounds_for_web_controls():
    assert bounds(Demo, "rate") == (0.0, 1.0)
    assert bounds(SamplingOptions, "top_p") == (0.0, 1.0)


def test_every_config_field_has_help_and_a_flag():
    for cls in (ModelConfig, TrainConfig, SamplingOptions):
        p = argparse.ArgumentParser()
        add_dataclass_args(p, cls)
        for f in dataclasses.fields(cls):
            assert f.metadata["help"], f"{cls.__name__}.{f.name} has no help text"
        assert len(p._actions) - 1 == len(dataclasses.fields(cls))  # one flag per field (+ --help)


def test_names_preset_follows_data_size():
    from app.names.train import PRESETS, preset_for, resolve_configs

    assert [preset_for(n) for n in (1_524, 4_999, 5_000, 19_999, 20_000, 88_799)] == \
        ["small", "small", "medium", "medium", "large", "large"]
    name, m, t = resolve_configs(88_799)
    assert name == "large" and (m, t) == PRESETS["large"]
    assert PRESETS["large"][0].dropout < PRESETS["small"][0].dropout  # big lists get less regularisation
    name, m, t = resolve_configs(100, "large", model_cfg=ModelConfig(units=5))
    assert name == "large" and m.units == 5 and t == PRESETS["large"][1]
    with pytest.raises(OptionError, match="preset"):
        resolve_configs(100, "huge")


def test_parse_temperatures():
    assert parse_temperatures("0.5, 1,1.5") == (0.5, 1.0, 1.5)
    for bad in ("", "a,1", "0,1", "1,inf", "-1"):
        with pytest.raises(OptionError, match="--temperatures"):
            parse_temperatures(bad)


def test_default_folders_do_not_depend_on_the_working_directory(tmp_path, monkeypatch):
    from app.core import paths

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("APP_HOME", raising=False)
    assert paths.default_model("names") == paths.PROJECT_ROOT / "models" / "dinos"
    home = tmp_path / "home"
    (home / "models" / "folk").mkdir(parents=True)
    monkeypatch.setenv("APP_HOME", str(home))
    assert paths.default_model("music") == home / "models" / "folk"  # APP_HOME wins
    monkeypatch.setattr(paths, "PROJECT_ROOT", tmp_path / "nowhere")
    with pytest.raises(ModelFolderError, match="models/dinos.*looked in .*home/models/dinos"):
        paths.default_model("names")


def test_web_slider_ranges_come_from_the_fields():
    from app.core.options import ui_range

    assert ui_range(SamplingOptions, "temperature") == (0.1, 2.0, 0.05)  # the field's ui sub-range
    assert ui_range(SamplingOptions, "top_p") == (0.0, 1.0, 0.01)  # else its bounds
    assert ui_range(Demo, "count") == (1, 10, 1)
    with pytest.raises(OptionError, match="no range"):
        ui_range(Demo, "mode")


def test_no_help_line_states_its_default_twice():
    from app.cli import build_parser

    def parsers(p):
        yield p
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    yield from parsers(sub)

    seen = 0
    for p in parsers(build_parser()):
        for action in p._actions:
            if not action.help:
                continue
            text = p._get_formatter()._expand_help(action)
            formatter = p.formatter_class(p.prog)
            if hasattr(formatter, "_get_help_string"):
                text = formatter._get_help_string(action) % {**vars(action), "prog": p.prog}
            assert text.count("(default") <= 1, f"{p.prog} {action.option_strings}: {text}"
            seen += 1
    assert seen > 100
