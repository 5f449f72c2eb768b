"""The running camera's configuration: the last good one, reloaded and changed safely.

A bad file never stops the camera: :meth:`ConfigStore.reload` keeps the last good
configuration (at start, the defaults) and remembers the error for ``obscura status``.
``obscura config set`` validates, writes the file atomically and applies the result
without a restart. SIGHUP (``systemctl reload obscura``) only enqueues a reload
(:func:`reload_on_sighup`); the daemon's main loop performs it.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from firmware.config import (
    DEFAULT_CONFIG_PATHS,
    Config,
    ConfigError,
    default_config,
    load_config,
    read_config_file,
    resolve_key,
    write_config_file,
)

logger = logging.getLogger(__name__)


class ConfigStore:
    """The configuration in force, thread-safe.

    Parameters
    ----------
    paths
        The files, in order: the first is the one ``set`` writes (``/etc/obscura/config.toml``),
        later ones are overlays that override it (the boot partition's).
    apply
        Called with each new configuration, under the store's lock: the daemon's
        ``apply_config``. Not called by the constructor: the store starts at the defaults
        until :meth:`reload`. May be set later (``store.apply = daemon.apply_config``) when
        the daemon is built from the first configuration.
    mem_total_bytes
        The board's memory (``MemTotal``), which chooses the defaults of the keys that
        depend on it (:data:`firmware.config.MEMORY_DEFAULTS`); None: the schema's defaults.

    Examples
    --------
    >>> store = ConfigStore(DEFAULT_CONFIG_PATHS)
    >>> store.reload()          # False: running on defaults, store.error says why
    >>> daemon = Daemon(store.config, ...)
    >>> store.apply = daemon.apply_config
    """

    def __init__(
        self,
        paths: Sequence[Path] = DEFAULT_CONFIG_PATHS,
        apply: Callable[[Config], None] | None = None,
        mem_total_bytes: int | None = None,
    ) -> None:
        if not paths:
            raise ConfigError("a configuration store needs at least one file")
        self.paths = tuple(Path(path) for path in paths)
        self.apply = apply
        self._lock = threading.RLock()
        self.defaults = default_config(mem_total_bytes)
        self._config = self.defaults
        self._error: str | None = None
        self._has_loaded = False

    @property
    def config(self) -> Config:
        """The last good configuration."""
        with self._lock:
            return self._config

    @property
    def error(self) -> str | None:
        """Why the last reload was refused (file, key and value), or None."""
        with self._lock:
            return self._error

    def _install(self, config: Config) -> None:
        changed = config != self._config
        self._config, self._error = config, None
        if changed and self.apply is not None:
            self.apply(config)

    def reload(self) -> bool:
        """Read the files again and apply them if they changed anything.

        Returns
        -------
        bool
            True when the files were good. On any error the last good configuration (before
            the first good one, the defaults) stays in force, :attr:`error` names the problem
            and it is logged; nothing is raised.
        """
        with self._lock:
            try:
                config = load_config(self.paths, base=self.defaults)
            except Exception as exc:  # noqa: BLE001 - no file may stop the camera
                self._refuse(exc)
                return False
            self._has_loaded = True
            try:
                self._install(config)
            except Exception as exc:  # noqa: BLE001 - nor may applying it
                self._error = f"applying the configuration failed: {type(exc).__name__}: {exc}"
                logger.exception("%s", self._error)
                return False
            logger.info("configuration loaded from %s", ", ".join(map(str, self.paths)))
            return True

    def _refuse(self, exc: Exception) -> None:
        """Remember and log why the files were not loaded."""
        if isinstance(exc, ConfigError):
            self._error = str(exc)
        else:  # a bug of ours: still name the files
            files = ", ".join(map(str, self.paths))
            self._error = f"{files}: cannot be loaded: {type(exc).__name__}: {str(exc)[:200]}"
        kept = ("not reloaded, keeping the last good one" if self._has_loaded
                else "not loaded, running on the defaults")
        logger.error("configuration %s: %s", kept, self._error,
                     exc_info=None if isinstance(exc, ConfigError) else exc)

    def get(self, name: str | None = None) -> dict[str, Any]:
        """``{full name: value}`` for ``name`` (``look`` or ``output.look``), or for every key."""
        config = self.config
        if name is None:
            return config.as_dict()
        key = resolve_key(name)
        return {key.name: config[key.name]}

    def sources(self, name: str | None = None) -> dict[str, str]:
        """``{full name: where its value came from}`` (a file, a board default, ``default``)
        for ``name``, or for every key."""
        config = self.config
        names = config.as_dict() if name is None else [resolve_key(name).name]
        return {key: config.source(key) for key in names}

    def set(self, assignments: Mapping[str, Any], source: str = "config set") -> dict[str, Any]:
        """Validate ``{name: value}``, write them to the first file atomically, apply them.

        A value is text as typed (``"90"``, ``"jpeg,dng"``), parsed by the key's type, or a
        value of that type (from JSON: ``90``, ``["jpeg"]``); JSON null is refused.

        Nothing is written or applied unless every value is valid, the files already on disk
        are valid, and no overlay overrides a key being set.

        Returns
        -------
        dict
            ``{full name: value}`` of what was set.

        Raises
        ------
        ConfigError
            Naming the key and value (or the file) at fault.
        """
        with self._lock:
            values = {}
            for name, value in assignments.items():
                key = resolve_key(name, source)
                values[key.name] = (key.parse(value, source) if isinstance(value, str)
                                    else key.validate(value, source))
            primary, overlays = self.paths[0], self.paths[1:]
            for path in overlays:
                overridden = sorted(set(read_config_file(path)) & set(values))
                if overridden:
                    raise ConfigError(
                        f"{path} sets {', '.join(overridden)}, overriding {primary}: "
                        "change it there"
                    )
            in_file = {**read_config_file(primary), **values}
            config = load_config(overlays, base=self.defaults.overridden_by(in_file, str(primary)))
            write_config_file(primary, in_file)
            logger.info("%s: set %s", primary, ", ".join(f"{k} = {v!r}" for k, v in values.items()))
            self._install(config)
            return values


@contextmanager
def reload_on_sighup(enqueue: Callable[[], None]) -> Iterator[None]:
    """While active, SIGHUP only calls ``enqueue()`` (``obscura run``: the daemon's
    ``post(ReloadRequested())``, so its main loop reloads).

    Install from the main thread (Python delivers signals there). The previous handler is
    restored on exit.
    """
    previous = signal.signal(signal.SIGHUP, lambda signum, frame: enqueue())
    try:
        yield
    finally:
        signal.signal(signal.SIGHUP, previous)
