"""The typed configuration: one declaration per key, frozen sections that follow the values."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from firmware.config import MEMORY_DEFAULTS, PIN_KEYS, ConfigError, default_config, load_config
from firmware.config_schema import KEYS, SCHEMA, SECTIONS, Settings


def test_every_key_is_one_typed_field_of_its_section() -> None:
    declared = {
        f"{section}.{item.name}": (item, typing.get_type_hints(cls)[item.name])
        for section, cls in SECTIONS.items() for item in dataclasses.fields(cls)
    }
    assert [key.name for key in SCHEMA] == list(declared)  # each field one key, same order
    assert len(KEYS) == len(SCHEMA)  # no name twice
    for key in SCHEMA:
        item, annotation = declared[key.name]
        origin = typing.get_origin(annotation)
        if origin is typing.Literal:
            assert key.type is str and key.choices is not None
            assert key.choices() == typing.get_args(annotation)
        elif origin is tuple:
            assert key.type is list and tuple(key.default) == item.default
        else:
            assert key.type is annotation and key.default == item.default
        assert key.help == item.metadata["help"]
        assert key.validate(key.default, "test") == key.default  # a default passes its rule


def test_sections_are_the_settings_fields_in_file_order() -> None:
    assert list(SECTIONS) == [item.name for item in dataclasses.fields(Settings)]
    assert list(dict.fromkeys(key.section for key in SCHEMA)) == list(SECTIONS)


def test_typed_sections_read_the_same_values_as_the_names(tmp_path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[output]\nkeep = ["dng"]\nlook = "neutral"\n[pins]\nshutter = 5\n'
                    "[capture]\nexposure_compensation_ev = -1\n", encoding="utf-8")
    for config in (default_config(), default_config(427 * 1024 * 1024), load_config([path])):
        for key in SCHEMA:
            value = getattr(getattr(config, key.section), key.short_name)
            assert value == (tuple(config[key.name]) if key.type is list else config[key.name])
            assert type(value) is (tuple if key.type is list else key.type)
    config = load_config([path])
    assert (config.output.keep, config.output.look, config.pins.shutter) == (("dng",), "neutral", 5)
    assert config.capture.exposure_compensation_ev == -1.0
    night = config.with_value("capture.mode", "night")
    assert night.capture.mode == "night" and config.capture.mode == "single"


def test_a_misspelt_key_or_an_assignment_fails_at_once() -> None:
    config = default_config()
    with pytest.raises(AttributeError, match="mdoe"):
        config.capture.mdoe  # type: ignore[attr-defined]  # noqa: B018 (mypy finds it too)
    with pytest.raises(AttributeError, match="captur"):
        config.captur  # type: ignore[attr-defined]  # noqa: B018
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.capture.mode = "burst"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.output = config.output  # type: ignore[misc]
    assert isinstance(config.output.keep, tuple)  # not a list one could append to
    with pytest.raises(ConfigError, match="unknown key 'capture.mdoe'"):
        config["capture.mdoe"]


def test_board_defaults_and_pins_name_declared_keys() -> None:
    for _, board, values in MEMORY_DEFAULTS:
        for name, value in values.items():
            assert KEYS[name].validate(value, board) == value
    assert PIN_KEYS == tuple(key.name for key in SCHEMA if key.section == "pins")
