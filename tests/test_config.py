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
    board_memory_bytes,
    default_config,
    load_config,
    parse_config_text,
    read_config_file,
    render_config,
    resolve_key,
    write_config_file,
)
from firmware.config_store import ConfigStore, reload_on_sighup
from pipeline.looks.look import builtin_looks


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


def test_the_merge_is_one_of_the_pipelines_merges() -> None:
    from pipeline.burst import MERGE_METHODS

    key = resolve_key("merge")
    assert key.name == "capture.merge" and key.default == "kernel"
    assert [key.parse(name, "test") for name in MERGE_METHODS] == list(MERGE_METHODS)
    with pytest.raises(ConfigError, match="median"):
        key.parse("median", "test")


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


# ------------------------------------------------------------------ one validation
DEEP_ARRAY = "[output]\nlook = " + "[" * 5000 + "]" * 5000 + "\n"
BAD_FILES = [
    ("[pins]\nlook = 17\n", "pins.look = 17: GPIO 17 is already pins.shutter"),
    ("[pins]\nshutter = 22\n", "pins.shutter = 22: GPIO 22 is already pins.look"),
    ("[pins]\nled = 3\n", "pins.led = 3: GPIO 3 is already pins.power"),
    ('[output]\nstorage_path = "/media/card\\u0000x"\n', "contains a NUL character"),
    ('[lens]\nname = "Summicron\\u0000"\n', "lens.name = 'Summicron\\x00': contains a NUL"),
    (DEEP_ARRAY, "values nested too deep"),
    ("a." * 3000 + "b = 1\n", "unknown key a.a = <a dict nested too deep to show>"),
    ("[output]\njpeg_quality = " + "9" * 5000 + "\n", "Exceeds the limit (4300 digits)"),
    ("[output]\njpeg_quality = 1e400\n", "output.jpeg_quality = inf: expected an integer"),
    ("[lens]\nfocal_length_mm = nan\n", "lens.focal_length_mm = nan: expected 0.0..2000.0"),
    ('[output]\nstorage_path = "photos"\n', "output.storage_path = 'photos': expected an absolute"),
    ('[lens]\nlibrary_dir = "/etc"\n', "lens.library_dir = '/etc': expected an absolute path of a"),
    ('[lens]\nlibrary_dir = "/usr/share/../../etc/x"\n', "not a system folder"),
    ('[output]\nstorage_path = "/var"\n', "output.storage_path = '/var': expected"),
    ('[camera]\nreplay_dir = "dngs"\n', "camera.replay_dir = 'dngs': expected"),
    ('look = "neutral"\n', "unknown key look = 'neutral' (did you mean output.look: look under "
                           "[output]?)"),
    ("jpeg_qualty = 80\n", "did you mean output.jpeg_quality: jpeg_quality under [output]?"),
]


@pytest.mark.parametrize(("text", "expected"), BAD_FILES)
def test_values_that_would_stop_the_daemon_fail_config_check(tmp_path, capsys, text,
                                                             expected) -> None:
    path = _write(tmp_path / "config.toml", text)
    with pytest.raises(ConfigError) as error:
        load_config([path])
    assert str(error.value).startswith(f"{path}: ") and expected in str(error.value)
    assert len(str(error.value)) < 400  # a nested table or a huge number is not echoed whole
    assert main(["config", "check", str(path)]) == 1
    assert expected in capsys.readouterr().err


@pytest.mark.parametrize(("text", "expected"), BAD_FILES)
def test_a_start_on_a_bad_file_runs_on_the_defaults_and_says_so(tmp_path, caplog, text,
                                                                expected) -> None:
    path = _write(tmp_path / "config.toml", text)
    store = ConfigStore([path], mem_total_bytes=8192 * MB)
    assert store.reload() is False  # nothing raised: the daemon starts
    assert store.config == default_config()
    assert store.error.startswith(f"{path}: ") and expected in store.error
    assert "not loaded, running on the defaults" in caplog.text
    assert "last good" not in caplog.text


def test_pins_are_checked_across_files_and_a_disabled_led_frees_its_pin(tmp_path) -> None:
    main_file = _write(tmp_path / "config.toml", "[pins]\nshutter = 5\n")
    overlay = _write(tmp_path / "boot.toml", "[pins]\nmode = 5\n")
    with pytest.raises(ConfigError, match=f"^{overlay}: pins.mode = 5: GPIO 5 is already "
                                          f"pins.shutter \\(from {main_file}\\)"):
        load_config([main_file, overlay])
    _write(overlay, "[pins]\nshutter = 6\n")  # a later file may move a pin out of the way
    assert load_config([main_file, overlay])["pins.shutter"] == 6
    _write(main_file, "[pins]\nled = 17\n[led]\nenabled = false\n")
    assert load_config([main_file])["pins.led"] == 17
    with pytest.raises(ConfigError, match="pins.look = 27: GPIO 27 is already pins.mode"):
        default_config().with_value("pins.look", 27)


@pytest.mark.parametrize(
    ("assignments", "expected"),
    [
        ({"pins.look": "17"}, "pins.look = 17: GPIO 17 is already pins.shutter"),
        ({"led": "22"}, "pins.led = 22: GPIO 22 is already pins.look"),
        ({"lens.name": None}, "config set: lens.name = None: expected a string"),
        ({"jpeg_quality": None}, "output.jpeg_quality = None: expected an integer"),
        ({"lens.name": "a\x00b"}, "lens.name = 'a\\x00b': contains a NUL character"),
        ({"storage_path": "photos"}, "output.storage_path = 'photos': expected an absolute"),
        ({"library_dir": "/etc"}, "lens.library_dir = '/etc': expected an absolute"),
        ({"library_dir": "/boot/firmware"}, "lens.library_dir = '/boot/firmware': expected"),
        ({"jpeg_quality": "9" * 5000}, "output.jpeg_quality = '99999"),
        ({"keep": "[" * 5000 + "]" * 5000}, "output.keep = '[[[[["),
    ],
)
def test_config_set_refuses_what_the_next_start_would_refuse(tmp_path, assignments,
                                                             expected) -> None:
    path = _write(tmp_path / "config.toml", "[output]\njpeg_quality = 80\n")
    store = ConfigStore([path])
    store.reload()
    with pytest.raises(ConfigError) as error:
        store.set(assignments)
    assert expected in str(error.value) and len(str(error.value)) < 400
    assert read_config_file(path) == {"output.jpeg_quality": 80}


def test_json_values_are_validated_not_stored_as_text(tmp_path) -> None:
    from firmware.control_socket import ControlHandler

    path = tmp_path / "config.toml"
    store = ConfigStore([path])
    handler = ControlHandler(None, store)
    reply = handler({"command": "config.set", "assignments": {"lens.name": None}})
    assert reply == {"ok": False, "error": "config set: lens.name = None: expected a string"}
    assert not path.exists()
    reply = handler({"command": "config.set",
                     "assignments": {"jpeg_quality": 90, "keep": ["dng"], "led.enabled": False}})
    assert reply["ok"], reply
    assert read_config_file(path) == {"output.jpeg_quality": 90, "output.keep": ["dng"],
                                      "led.enabled": False}


def test_a_reload_that_fails_in_any_way_is_recorded_not_raised(tmp_path, monkeypatch,
                                                               caplog) -> None:
    path = _write(tmp_path / "config.toml", '[output]\nlook = "neutral"\n')
    store = ConfigStore([path])
    assert store.reload() is True

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr("firmware.config_store.load_config", broken)
    assert store.reload() is False
    assert store.error == f"{path}: cannot be loaded: RuntimeError: a bug"
    assert store.config["output.look"] == "neutral"
    assert "not reloaded, keeping the last good one" in caplog.text
    monkeypatch.undo()

    def refusing(config) -> None:
        raise RuntimeError("apply failed")

    store.apply = refusing
    _write(path, '[output]\nlook = "standard"\n')
    assert store.reload() is False
    assert store.error == "applying the configuration failed: RuntimeError: apply failed"


# --------------------------------------------------------------- memory defaults
MB = 1024 * 1024
MEMORY_KEYS = ("capture.ring_frames", "capture.burst_frames", "capture.night_max_frames",
               "capture.write_behind_shots", "output.keep", "capture.merge")
#: A 12 MP frame in memory (CSI-2 packed, Pi 4), MB.
FRAME_MB = 18.6


@pytest.mark.parametrize(
    ("mem_total_mb", "expected"),
    [
        (427, (2, 3, 4, 0, ["dng"], "resample")),  # Zero 2 W: 512 MB
        (906, (3, 3, 4, 0, ["jpeg", "dng"], "resample")),  # 1 GB: the kernel merge's 0.2 GB more
        (1845, (8, 6, 10, 1, ["jpeg", "dng"], "resample")),  # 2 GB
        (3794, (8, 6, 15, 1, ["jpeg", "dng"], "kernel")),  # 4 GB
        (7810, (8, 6, 15, 1, ["jpeg", "dng"], "kernel")),  # 8 GB
    ],
)
def test_memory_defaults_follow_the_board(mem_total_mb, expected) -> None:
    config = default_config(mem_total_mb * MB)
    assert tuple(config[name] for name in MEMORY_KEYS) == expected
    if mem_total_mb < 1536:
        assert config.source("capture.ring_frames") == (
            f"default for a {'512 MB' if mem_total_mb < 768 else '1 GB'} board "
            f"(MemTotal {mem_total_mb} MB)")
    elif mem_total_mb < 3072:
        assert config.source("capture.ring_frames") == "default"
        assert config.source("capture.merge") == (
            f"default for a 2 GB board (MemTotal {mem_total_mb} MB)")
    else:
        assert config == default_config() and config.source("capture.ring_frames") == "default"


def test_a_512_mb_board_holds_few_frames_and_develops_nothing() -> None:
    """The Zero 2 W budget: about 430 MB MemTotal, 100-150 MB for the OS, 155 MB for the
    interpreter and numba: the frames held at once must stay near 100 MB, and the 375 MB
    develop of a JPEG (or a merge) must not run on the board."""
    config = default_config(427 * MB)
    captured = max(config["capture.burst_frames"], config["capture.night_max_frames"])
    held = config["capture.ring_frames"] + captured * (1 + config["capture.write_behind_shots"])
    assert held * FRAME_MB <= 120
    assert set(config["output.keep"]) == {"dng"}


def test_the_users_values_win_over_the_board_defaults(tmp_path) -> None:
    path = _write(tmp_path / "config.toml", "[capture]\nring_frames = 5\n")
    store = ConfigStore([path], mem_total_bytes=427 * MB)
    assert store.config["capture.ring_frames"] == 2  # before the first load: board defaults
    assert store.reload() is True
    assert store.config["capture.ring_frames"] == 5
    assert store.config["capture.burst_frames"] == 3
    assert store.sources("ring_frames") == {"capture.ring_frames": str(path)}
    assert store.sources()["output.keep"] == "default for a 512 MB board (MemTotal 427 MB)"
    assert store.sources()["output.look"] == "default"
    store.set({"burst_frames": "4"})
    assert read_config_file(path) == {"capture.ring_frames": 5, "capture.burst_frames": 4}
    assert store.config["output.keep"] == ["dng"]  # the board default, not written to the file


def test_board_memory_is_read_from_meminfo(tmp_path) -> None:
    meminfo = _write(tmp_path / "meminfo", "MemTotal:         437460 kB\nMemFree: 1 kB\n")
    assert board_memory_bytes(meminfo) == 437460 * 1024
    assert board_memory_bytes(tmp_path / "absent") is None
    assert board_memory_bytes(_write(tmp_path / "odd", "MemTotal: lots\n")) is None


def test_config_get_sources_and_check_show_the_board_defaults(monkeypatch, capsys) -> None:
    import json
    import tempfile
    from pathlib import Path

    from firmware.control_server import ControlServer
    from firmware.control_socket import ControlHandler

    with tempfile.TemporaryDirectory(prefix="obs") as directory:  # AF_UNIX: a short path
        path = _write(Path(directory) / "config.toml", "[capture]\nring_frames = 3\n")
        store = ConfigStore([path], mem_total_bytes=906 * MB)
        store.reload()
        socket_path = Path(directory) / "control.sock"
        monkeypatch.setenv("OBSCURA_SOCKET", str(socket_path))
        with ControlServer(socket_path, ControlHandler(None, store)):
            assert main(["config", "get", "--sources"]) == 0
            out = capsys.readouterr().out
            assert f"capture.ring_frames = 3  # {path}\n" in out
            assert ("capture.night_max_frames = 4  # default for a 1 GB board (MemTotal 906 MB)"
                    in out)
            assert 'output.look = "standard"  # default\n' in out
            assert main(["config", "get", "burst_frames", "--sources", "--json"]) == 0
            assert json.loads(capsys.readouterr().out) == {"capture.burst_frames": {
                "value": 3, "source": "default for a 1 GB board (MemTotal 906 MB)"}}

        monkeypatch.setattr("firmware.commands.config.board_memory_bytes", lambda: 427 * MB)
        assert main(["config", "check", str(path)]) == 0
        out = capsys.readouterr().out
        assert f"{path}: ok\n" in out
        assert ("default for a 512 MB board (MemTotal 427 MB): camera.resolution = \"binned\", "
                    "capture.burst_frames = 3, "
                "capture.night_max_frames = 4, capture.write_behind_shots = 0, "
                'capture.merge = "resample", output.keep = ["dng"]\n') in out


def test_a_512_mb_board_streams_the_binned_mode() -> None:
    from firmware.devices import camera_from_config

    small = default_config(427 * MB).with_value("camera.source", "simulator")
    assert small["camera.resolution"] == "binned"
    assert default_config(3800 * MB)["camera.resolution"] == "full"
    camera = camera_from_config(small, simulator_size=(3040, 4056))
    assert camera._output_size == (1520, 2028)
