"""The limits of a hosted instance, declared once, read from one TOML file.

Every setting is an :class:`~analytics.params.Rule` (type, default, range, help), so the file
is checked the way every parameter is, ``embex settings`` prints the effective values and
:func:`settings_markdown` writes the table in docs/deploy.md from the same declarations. A
missing file, or a key left out, means the documented default: the defaults are the limits the
library already applies (``analytics.corpus``'s ``DEFAULT_MAX_*``, the job executor's).

>>> load_settings("settings.toml").max_upload_mb       # the file, else $EMBEX_SETTINGS, else defaults
200

``settings.toml``::

    max_upload_mb = 500
    lockout_minutes = 30
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from .errors import ParameterError, SettingsError
from .params import Rule

#: the environment variable naming a settings file (when no path is given)
ENV = "EMBEX_SETTINGS"

# fmt: off
#: setting name -> rule. The one place the limits' defaults and ranges are written; the defaults
#: equal the constants of analytics.corpus and analytics.jobs (tests/test_settings.py checks it)
SETTINGS: dict[str, Rule] = {r.name: r for r in (
    Rule("max_upload_mb", "int", 200, low=1, high=100_000,
         help="largest file a person may upload through the dashboard, in MiB (an upload is held "
              "in memory while it is read)"),
    Rule("max_decompressed_mb", "int", 1024, low=1, high=1_000_000,
         help="largest decompressed size of an uploaded file, in MiB (a small compressed Parquet "
              "file can hold gigabytes)"),
    Rule("max_rows_per_corpus", "int", 5_000_000, low=1, high=1_000_000_000,
         help="most texts one uploaded corpus may hold"),
    Rule("max_text_chars", "int", 1_000_000, low=100, high=100_000_000,
         help="longest text (or metadata value) accepted, in characters; a longer one is refused "
              "with its row number, never cut"),
    Rule("max_running_jobs", "int", 2, low=1, high=64,
         help="background jobs (embedding, maps, tests) running at once on the server, in total"),
    Rule("max_running_jobs_per_person", "int", 1, low=1, high=64,
         help="jobs of one person running at once; the rest wait in the queue"),
    Rule("max_queued_jobs_per_person", "int", 20, low=1, high=10_000,
         help="jobs one person may have queued or running; past it a request is refused"),
    Rule("lockout_failures", "int", 5, low=1, high=100,
         help="wrong passwords in a row after which a built-in account is locked"),
    Rule("lockout_minutes", "int", 15, low=1, high=10_080,
         help="how long a locked account stays locked, in minutes (an admin can unlock it "
              "sooner: embex user unlock NAME)"),
    Rule("min_password_chars", "int", 8, low=1, high=128,
         help="shortest password accepted for a built-in account"),
)}
# fmt: on


@dataclass(frozen=True)
class Settings:
    """The effective limits: one attribute per entry of :data:`SETTINGS`; ``source`` is the
    file they were read from (None: all defaults)."""

    max_upload_mb: int = SETTINGS["max_upload_mb"].default
    max_decompressed_mb: int = SETTINGS["max_decompressed_mb"].default
    max_rows_per_corpus: int = SETTINGS["max_rows_per_corpus"].default
    max_text_chars: int = SETTINGS["max_text_chars"].default
    max_running_jobs: int = SETTINGS["max_running_jobs"].default
    max_running_jobs_per_person: int = SETTINGS["max_running_jobs_per_person"].default
    max_queued_jobs_per_person: int = SETTINGS["max_queued_jobs_per_person"].default
    lockout_failures: int = SETTINGS["lockout_failures"].default
    lockout_minutes: int = SETTINGS["lockout_minutes"].default
    min_password_chars: int = SETTINGS["min_password_chars"].default
    source: str | None = field(default=None, compare=False)

    def __post_init__(self):
        for name, rule in SETTINGS.items():  # Settings(...) built in code is checked too
            try:
                object.__setattr__(self, name, rule.check(getattr(self, name)))
            except ParameterError as exc:
                raise SettingsError(f"Setting {exc}") from None

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 2**20

    @property
    def max_decompressed_bytes(self) -> int:
        return self.max_decompressed_mb * 2**20

    def as_dict(self) -> dict[str, int]:
        """Every setting by name (without ``source``)."""
        return {name: getattr(self, name) for name in SETTINGS}


def parse_settings(data: dict, source: str = "settings") -> Settings:
    """Settings from a mapping (a parsed TOML file); ``source`` names it in messages. An
    unknown key, a wrong type or a value out of range raises :class:`SettingsError` naming
    the source, the key and the allowed range."""
    unknown = sorted(set(data) - set(SETTINGS))
    if unknown:
        raise SettingsError(
            f"{source}: unknown setting{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(k) for k in unknown)}. Known settings: {', '.join(SETTINGS)} "
            "(embex settings lists them with their ranges)."
        )
    values = {}
    for name, value in data.items():
        try:
            values[name] = SETTINGS[name].check(value)
        except ParameterError as exc:  # "max_upload_mb must be an integer between 1 and ..."
            raise SettingsError(f"{source}: {exc}") from None
    return Settings(**values, source=source)


def load_settings(path: str | os.PathLike | None = None, *, env=None) -> Settings:
    """The settings in the TOML file ``path``, else in the file ``$EMBEX_SETTINGS`` names,
    else the defaults. A file that cannot be read, is not TOML, or holds an unknown key, a
    wrong type or a value out of range raises :class:`SettingsError` naming the file, the key
    and the allowed range; nothing falls back silently to a default."""
    env = os.environ if env is None else env
    if path is None:
        path = env.get(ENV) or None
        if path is None:
            return Settings()
    path = Path(path).expanduser()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SettingsError(
            f"There is no settings file at {path}. Create it (embex settings --markdown lists "
            f"every setting), or leave it out (and unset {ENV}) for the defaults."
        ) from None
    except OSError as exc:
        raise SettingsError(f"The settings file {path} cannot be read: {exc.strerror or exc}.") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise SettingsError(f"The settings file {path} is not UTF-8 text; save it as UTF-8.") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(
            f"The settings file {path} is not valid TOML: {exc}. Each line is name = value, "
            "e.g. max_upload_mb = 500."
        ) from None
    return parse_settings(data, str(path))


def settings_markdown() -> str:
    """The settings as a Markdown table (name, default, range, what it limits), for
    docs/deploy.md and ``embex settings --markdown``."""
    lines = ["| Setting | Default | Range | What it limits |", "|---|---|---|---|"]
    for name, rule in SETTINGS.items():
        cells = [
            f"`{name}`",
            f"{rule.default:,}",
            f"{rule.low:,}–{rule.high:,}",
            rule.help.replace("|", "\\|"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _check_fields() -> None:
    names = [f.name for f in fields(Settings) if f.name != "source"]
    if names != list(SETTINGS):  # a setting declared without its attribute, or the reverse
        raise ImportError(f"Settings fields {names} do not match SETTINGS {list(SETTINGS)}.")


_check_fields()

__all__ = ["ENV", "SETTINGS", "Settings", "load_settings", "parse_settings", "settings_markdown"]
