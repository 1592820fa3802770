"""The instance's limits (analytics.settings): documented defaults, one TOML file, clear refusals."""

from __future__ import annotations

import dataclasses
import inspect
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from analytics import corpus, jobs
from analytics.errors import SettingsError
from analytics.settings import ENV, SETTINGS, Settings, load_settings, parse_settings, settings_markdown


def test_defaults_are_the_limits_the_library_already_applies():
    s = Settings()
    assert s.max_upload_bytes == corpus.DEFAULT_MAX_BYTES
    assert s.max_decompressed_bytes == corpus.DEFAULT_MAX_DECOMPRESSED_BYTES
    assert s.max_rows_per_corpus == corpus.DEFAULT_MAX_ROWS
    assert s.max_text_chars == corpus.DEFAULT_MAX_TEXT_CHARS
    assert s.max_queued_jobs_per_person == jobs.MAX_QUEUED_PER_REQUESTER
    executor = inspect.signature(jobs.Executor).parameters
    assert s.max_running_jobs == executor["max_running"].default
    assert s.max_running_jobs_per_person == executor["max_per_requester"].default
    assert (s.lockout_failures, s.lockout_minutes) == (5, 15)


def test_one_attribute_per_setting_and_no_file_means_the_defaults(tmp_path):
    names = [f.name for f in dataclasses.fields(Settings) if f.name != "source"]
    assert names == list(SETTINGS)
    assert load_settings(env={}) == Settings() and load_settings(env={}).source is None
    assert Settings().as_dict() == {name: rule.default for name, rule in SETTINGS.items()}
    with pytest.raises(dataclasses.FrozenInstanceError):
        Settings().max_upload_mb = 1


def test_a_file_sets_what_it_names_and_leaves_the_rest_at_their_defaults(tmp_path):
    path = tmp_path / "settings.toml"
    path.write_text("# limits of the team instance\nmax_upload_mb = 500\nlockout_minutes = 30\n")
    s = load_settings(path, env={})
    assert (s.max_upload_mb, s.lockout_minutes, s.source) == (500, 30, str(path))
    assert s.max_upload_bytes == 500 * 2**20
    assert s.max_rows_per_corpus == SETTINGS["max_rows_per_corpus"].default
    # no path: the file $EMBEX_SETTINGS names; a path given wins over it
    assert load_settings(env={ENV: str(path)}).max_upload_mb == 500
    other = tmp_path / "other.toml"
    other.write_text("max_upload_mb = 7\n")
    assert load_settings(other, env={ENV: str(path)}).max_upload_mb == 7


@pytest.mark.parametrize(
    "text, expected",
    [
        ("max_upload_gb = 2\n", r"unknown setting 'max_upload_gb'\. Known settings: max_upload_mb, "),
        (
            'max_upload_mb = "500"\n',
            r"max_upload_mb must be an integer between 1 and 100000, got '500' \(str\)",
        ),
        (
            "max_upload_mb = 2.5\n",
            r"max_upload_mb must be an integer between 1 and 100000, got 2\.5 \(float\)",
        ),
        (
            "lockout_failures = true\n",
            r"lockout_failures must be an integer between 1 and 100, got True \(bool\)",
        ),
        (
            "lockout_failures = 0\n",
            r"lockout_failures must be an integer between 1 and 100, got 0\. .*default \(5\)",
        ),
        ("max_running_jobs = 65\n", r"max_running_jobs must be an integer between 1 and 64, got 65"),
        ("[limits]\nmax_upload_mb = 5\n", r"unknown setting 'limits'"),
        ("max_upload_mb = \n", r"is not valid TOML: .*line 1"),
        ("max_upload_mb = 1\nmax_upload_mb = 2\n", r"is not valid TOML"),
    ],
)
def test_a_bad_file_names_the_file_the_key_and_the_range(tmp_path, text, expected):
    path = tmp_path / "settings.toml"
    path.write_text(text)
    with pytest.raises(SettingsError, match=expected) as caught:
        load_settings(path, env={})
    assert str(path) in str(caught.value)


def test_unreadable_missing_and_non_utf8_files_are_refused_by_name(tmp_path):
    missing = tmp_path / "nope.toml"
    with pytest.raises(SettingsError, match=f"There is no settings file at {re.escape(str(missing))}"):
        load_settings(missing, env={})
    with pytest.raises(SettingsError, match="no settings file"):  # $EMBEX_SETTINGS naming nothing
        load_settings(env={ENV: str(missing)})
    latin = tmp_path / "latin.toml"
    latin.write_bytes("# café\nmax_upload_mb = 5\n".encode("latin-1"))
    with pytest.raises(SettingsError, match="is not UTF-8"):
        load_settings(latin, env={})
    with pytest.raises(SettingsError, match="cannot be read"):
        load_settings(tmp_path, env={})  # a folder


def test_settings_built_in_code_are_checked_too():
    with pytest.raises(SettingsError, match="max_upload_mb must be an integer between 1 and 100000"):
        Settings(max_upload_mb=0)


@given(name=st.sampled_from(sorted(SETTINGS)), value=st.integers(min_value=-(10**12), max_value=10**12))
def test_any_integer_is_taken_exactly_when_it_is_in_range(name, value):
    rule = SETTINGS[name]
    if rule.low <= value <= rule.high:
        assert getattr(parse_settings({name: value}, "f.toml"), name) == value
    else:
        with pytest.raises(SettingsError) as caught:
            parse_settings({name: value}, "f.toml")
        message = str(caught.value)
        assert message.startswith(f"f.toml: {name} must be an integer between {rule.low} and {rule.high}")


def test_markdown_table_has_one_row_per_setting_with_default_and_range():
    lines = settings_markdown().splitlines()
    assert lines[0] == "| Setting | Default | Range | What it limits |" and lines[1] == "|---|---|---|---|"
    rows = [[c.strip() for c in line.strip("|").split(" | ")] for line in lines[2:]]
    assert [r[0] for r in rows] == [f"`{n}`" for n in SETTINGS]
    for (_, default, span, text), rule in zip(rows, SETTINGS.values()):
        assert int(default.replace(",", "")) == rule.default
        low, high = (int(x.replace(",", "")) for x in span.split("–"))
        assert (low, high) == (rule.low, rule.high) and text and "|" not in text.replace("\\|", "")
