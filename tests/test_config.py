"""Configuration: schema validation, files, the store that survives bad files, SIGHUP."""

from __future__ import annotations

import os
import queue
import signal
import stat

import pytest

from firmware.cli import main
from firmware.config import (
    KEYS,
    ConfigError,
    default_config,
    load_config,
    parse_config_text,
    read_config_file,
    render_config,
    resolve_key,
    write_config_file,
)
from firmware.config_store import ConfigStore, reload_on_sighup
from pipeline.look import builtin_looks


def _write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


def test_files_override_defaults_then_each_other(tmp_path) -> None:
    main_file = _write(tmp_path / "config.toml", '[output]\nlook = "neutral"\njpeg_quality = 80\n')
    overlay = _write(tmp_path / "boot.toml", "[output]\njpeg_quality = 95\n")
    config = load_config([main_file, overlay, tmp_path / "absent.toml"])
    assert config["output.look"] == "neutral"
    assert config["output.jpeg_quality"] == 95
    assert config["capture.burst_frames"] == KEYS["capture.burst_frames"].default


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[output]\njpeg_quality = 101\n", "output.jpeg_quality = 101: expected 1..100"),
        ('[output]\njpeg_quality = "high"\n', "output.jpeg_quality = 'high': expected an integer"),
        ('[output]\nlook = "no-such-look"\n', "output.look = 'no-such-look': expected one of"),
        ('[output]\nkeep = ["raw"]\n', "output.keep = ['raw']: expected a non-empty list"),
        ("[pins]\nshutter = 40\n", "pins.shutter = 40: expected a BCM GPIO number"),
        ("[led]\nenabled = 1\n", "led.enabled = 1: expected true or false"),
        ('[output]\nlok = "x"\n', "unknown key output.lok = 'x' (did you mean output.look?)"),
        ("[camera]\nflash = true\n", "unknown key camera.flash = True"),
        ("[output]\nlook = \n", "Invalid value"),
        ("[output.look]\nname = 1\n", "output.look = {'name': 1}: expected a string"),
    ],
)
def test_errors_name_file_key_and_value(tmp_path, text, expected) -> None:
    path = _write(tmp_path / "config.toml", text)
    with pytest.raises(ConfigError) as error:
        load_config([path])
    message = str(error.value)
    assert message.startswith(f"{path}: ")
    assert expected in message
    assert isinstance(error.value, ValueError)


def test_look_names_come_from_the_installed_looks() -> None:
    key = resolve_key("look")
    assert key.name == "output.look"
    for name in builtin_looks():
        assert key.parse(name, "test") == name
    with pytest.raises(ConfigError, match=", ".join(builtin_looks())):
        key.parse("no-such-look", "test")


@pytest.mark.parametrize(
    ("name", "text", "value"),
    [
        ("jpeg_quality", "90", 90),
        ("output.keep", "jpeg, dng", ["jpeg", "dng"]),
        ("keep", '["merged_dng"]', ["merged_dng"]),
        ("led.enabled", "off", False),
        ("focal_length_mm", "50", 50.0),
        ("exposure_compensation_ev", "-0.7", -0.7),
        ("lens.name", "Summicron 50", "Summicron 50"),
        ("lens.name", '"50"', "50"),
        ("mode", "hdr", "hdr"),
    ],
)
def test_command_line_values_are_parsed_by_the_key_type(name, text, value) -> None:
    assert resolve_key(name).parse(text, "test") == value


def test_names_resolve_or_fail_clearly() -> None:
    assert resolve_key("mode").name == "capture.mode"
    assert resolve_key("pins.mode").name == "pins.mode"
    with pytest.raises(ConfigError, match="unknown key 'colour'"):
        resolve_key("colour")
    with pytest.raises(ConfigError, match="did you mean output.look"):
        resolve_key("output.lok")
    with pytest.raises(ConfigError, match="expected an integer"):
        resolve_key("jpeg_quality").parse("high", "test")


def test_default_file_is_commented_and_reads_back_as_the_defaults() -> None:
    text = render_config()
    assert parse_config_text(text, "default") == {}
    assert all(line.startswith("#") or line.startswith("[") or not line
               for line in text.splitlines())
    for key in KEYS.values():
        assert f"# {key.short_name} = " in text
    values = {"output.look": "neutral", "lens.name": 'Summicron "50"', "led.enabled": False,
              "output.keep": ["jpeg"], "lens.f_number": 2.0}
    assert parse_config_text(render_config(values), "set") == values


def test_write_config_file_is_atomic_and_keeps_the_mode(tmp_path) -> None:
    path = _write(tmp_path / "config.toml", "")
    os.chmod(path, 0o640)
    write_config_file(path, {"output.look": "neutral"})
    assert read_config_file(path) == {"output.look": "neutral"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["config.toml"]  # no temporary left
    fresh = write_config_file(tmp_path / "new.toml", {})
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o644


class Recorder:
    """Stands in for the daemon's apply_config."""

    def __init__(self) -> None:
        self.applied = []

    def __call__(self, config) -> None:
        self.applied.append(config)


def test_store_keeps_the_last_good_config_when_a_reload_fails(tmp_path, caplog) -> None:
    path = _write(tmp_path / "config.toml", '[output]\nlook = "neutral"\n')
    apply = Recorder()
    store = ConfigStore([path], apply=apply)
    assert store.config == default_config() and apply.applied == []
    assert store.reload() is True
    assert store.config["output.look"] == "neutral" and store.error is None
    assert len(apply.applied) == 1

    _write(path, "[output]\njpeg_quality = 0\n")
    assert store.reload() is False
    assert store.config["output.look"] == "neutral"
    assert store.error == f"{path}: output.jpeg_quality = 0: expected 1..100"
    assert "keeping the last good one" in caplog.text
    assert len(apply.applied) == 1

    _write(path, '[output]\nlook = "neutral"\n')
    assert store.reload() is True and store.error is None
    assert len(apply.applied) == 1  # nothing changed, nothing to apply


def test_store_set_validates_writes_and_applies(tmp_path) -> None:
    path = _write(tmp_path / "config.toml", "[output]\njpeg_quality = 80\n")
    apply = Recorder()
    store = ConfigStore([path, tmp_path / "absent-overlay.toml"], apply=apply)
    store.reload()
    assert store.set({"look": "neutral", "burst_frames": "8"}) == {
        "output.look": "neutral", "capture.burst_frames": 8}
    assert read_config_file(path) == {
        "output.jpeg_quality": 80, "output.look": "neutral", "capture.burst_frames": 8}
    assert apply.applied[-1]["output.look"] == "neutral"
    assert store.get("look") == {"output.look": "neutral"}
    assert store.get()["capture.burst_frames"] == 8

    before = path.read_bytes()
    with pytest.raises(ConfigError, match="config set: output.jpeg_quality = 200: expected 1..100"):
        store.set({"look": "standard", "jpeg_quality": "200"})
    assert path.read_bytes() == before and store.config["output.look"] == "neutral"


def test_store_set_refuses_keys_an_overlay_overrides(tmp_path) -> None:
    path = tmp_path / "config.toml"
    overlay = _write(tmp_path / "boot.toml", '[output]\nlook = "neutral"\n')
    store = ConfigStore([path, overlay])
    with pytest.raises(ConfigError, match=f"{overlay} sets output.look, overriding {path}"):
        store.set({"look": "standard"})
    assert not path.exists()
    store.set({"jpeg_quality": "70"})
    assert store.config["output.look"] == "neutral"
    assert store.config["output.jpeg_quality"] == 70


def test_store_set_will_not_overwrite_a_broken_file(tmp_path) -> None:
    path = _write(tmp_path / "config.toml", "[output\n")
    with pytest.raises(ConfigError, match=str(path)):
        ConfigStore([path]).set({"look": "neutral"})
    assert path.read_text() == "[output\n"


def test_sighup_only_enqueues_and_the_main_loop_reloads(tmp_path) -> None:
    path = _write(tmp_path / "config.toml", '[output]\nlook = "neutral"\n')
    store = ConfigStore([path])
    events: queue.Queue[str] = queue.Queue()
    previous = signal.getsignal(signal.SIGHUP)
    with reload_on_sighup(lambda: events.put("reload")):
        os.kill(os.getpid(), signal.SIGHUP)
        assert events.get(timeout=5) == "reload"
        assert store.config["output.look"] == "standard"  # the handler itself did nothing
        _write(path, '[output]\nlook = "nope"\n')
        assert store.reload() is False
        _write(path, '[output]\nlook = "neutral"\n')
        assert store.reload() is True
    assert signal.getsignal(signal.SIGHUP) == previous
    assert store.config["output.look"] == "neutral"


def test_config_check_and_default_commands(tmp_path, capsys) -> None:
    target = tmp_path / "config.toml"
    assert main(["config", "default", "-o", str(target)]) == 0
    assert main(["config", "check", str(target)]) == 0
    assert f"{target}: ok" in capsys.readouterr().out
    assert main(["config", "default", "-o", str(target)]) == 1
    assert "exists; --force replaces it" in capsys.readouterr().err

    _write(target, '[output]\nlook = "no-such-look"\n')
    assert main(["config", "check", str(target)]) == 1
    assert f"{target}: output.look = 'no-such-look': expected one of" in capsys.readouterr().err
    assert main(["config", "check", str(tmp_path / "missing.toml")]) == 1
    assert "missing.toml: no such file" in capsys.readouterr().err


def test_every_shared_short_name_has_an_alias() -> None:
    from collections import Counter

    from firmware.config import ALIASES

    shared = {name for name, n in Counter(k.short_name for k in KEYS.values()).items() if n > 1}
    assert shared == set(ALIASES)
    assert all(resolve_key(alias).name == target for alias, target in ALIASES.items())


def test_config_default_prints_the_template(capsys) -> None:
    assert main(["config", "default"]) == 0
    assert capsys.readouterr().out == render_config()
