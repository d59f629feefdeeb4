"""Settings resolution: kwargs > QUEBEC_* env > queue.yml > defaults, and every way it says no."""

from __future__ import annotations

import dataclasses
import pickle
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from quebec.config import DispatcherConfig, Settings, WorkerConfig, load_settings, parse_duration
from quebec.errors import ConfigError, InvalidIdentifier


def write(directory: Path, text: str, name: str = "queue.yml") -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def load(directory: Path, kwargs: dict[str, Any] | None = None, **env: str) -> Settings:
    return load_settings(kwargs, env, cwd=str(directory))


def error(directory: Path, kwargs: dict[str, Any] | None = None, **env: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load(directory, kwargs, **env)
    return str(caught.value)


PRODUCTION = """
production:
  workers:
    - queues: [real_time, "back*"]
      threads: 5
      polling_interval: 0.5
      processes: 2
    - queues: low
  dispatchers:
    - polling_interval: 2
      batch_size: 100
"""


# --- precedence --------------------------------------------------------------------------------


def test_defaults_apply_when_nothing_is_configured(tmp_path: Path) -> None:
    settings = load(tmp_path)
    assert settings == Settings()
    assert settings.worker_threads == 3
    assert settings.process_heartbeat_interval == 5.0
    assert settings.process_alive_threshold == 30.0
    assert settings.workers == (WorkerConfig(),)
    assert settings.dispatchers == (DispatcherConfig(),)
    assert settings.config_path is None
    assert dict(settings.experimental_queue_concurrency) == {}


def test_env_overrides_yaml_but_kwarg_wins(tmp_path: Path) -> None:
    write(tmp_path, "workers:\n  - threads: 5\n")
    assert load(tmp_path).worker_threads == 5
    assert load(tmp_path, QUEBEC_WORKER_THREADS="7").worker_threads == 7
    assert load(tmp_path, {"worker_threads": 9}, QUEBEC_WORKER_THREADS="7").worker_threads == 9


def test_none_kwargs_count_as_not_given(tmp_path: Path) -> None:
    settings = load(tmp_path, {"worker_threads": None, "shutdown_timeout": None}, QUEBEC_WORKER_THREADS="4")
    assert settings.worker_threads == 4
    assert settings.shutdown_timeout == 5.0


def test_empty_environment_variable_counts_as_unset(tmp_path: Path) -> None:
    assert load(tmp_path, QUEBEC_WORKER_THREADS="", QUEBEC_USE_SKIP_LOCKED=" ").worker_threads == 3


def test_database_url_prefers_quebec_variable_over_database_url(tmp_path: Path) -> None:
    assert load(tmp_path, DATABASE_URL="sqlite:///a.db").database_url == "sqlite:///a.db"
    both = load(tmp_path, DATABASE_URL="sqlite:///a.db", QUEBEC_DATABASE_URL="sqlite:///b.db")
    assert both.database_url == "sqlite:///b.db"
    assert load(tmp_path, {"database_url": "sqlite:///c.db"}, DATABASE_URL="x").database_url == "sqlite:///c.db"


def test_database_url_comes_from_yaml_database_section_last(tmp_path: Path) -> None:
    write(tmp_path, "database:\n  url: sqlite:///yml.db\n")
    assert load(tmp_path).database_url == "sqlite:///yml.db"
    assert load(tmp_path, DATABASE_URL="sqlite:///env.db").database_url == "sqlite:///env.db"


def test_top_level_options_can_be_set_in_yaml(tmp_path: Path) -> None:
    write(tmp_path, "shutdown_timeout: 10s\nuse_listen_notify: false\nname: billing\n")
    settings = load(tmp_path, QUEBEC_NAME="other")
    assert settings.shutdown_timeout == 10.0
    assert settings.use_listen_notify is False
    assert settings.name == "other"


# --- finding and reading queue.yml -------------------------------------------------------------


def test_environment_section_is_chosen_by_quebec_env(tmp_path: Path) -> None:
    write(tmp_path, PRODUCTION + "development:\n  workers:\n    - threads: 1\n")
    assert load(tmp_path).worker_threads == 1
    production = load(tmp_path, QUEBEC_ENV="production")
    assert production.env == "production"
    assert production.worker_threads == 5
    assert production.worker_polling_interval == 0.5
    assert production.worker_queues == ("real_time", "back*")
    assert production.workers[0].processes == 2
    assert production.workers[1] == WorkerConfig(queues=("low",))
    assert production.dispatcher_polling_interval == 2.0
    assert production.dispatcher_batch_size == 100
    assert load(tmp_path, {"env": "production"}).worker_threads == 5


def test_flat_file_applies_whatever_the_environment(tmp_path: Path) -> None:
    write(tmp_path, "workers:\n  - queues: '*'\n    threads: 4\n")
    assert load(tmp_path, QUEBEC_ENV="production").worker_threads == 4


def test_empty_file_and_empty_section_mean_defaults(tmp_path: Path) -> None:
    write(tmp_path, "")
    assert load(tmp_path).worker_threads == 3
    write(tmp_path, "development:\nproduction:\n  workers: [{threads: 8}]\n")
    assert load(tmp_path).worker_threads == 3


def test_config_slash_queue_yml_is_the_fallback_location(tmp_path: Path) -> None:
    write(tmp_path, "workers: [{threads: 6}]\n", "config/queue.yml")
    settings = load(tmp_path)
    assert settings.worker_threads == 6
    assert settings.config_path == str(tmp_path / "config" / "queue.yml")
    write(tmp_path, "workers: [{threads: 2}]\n")
    assert load(tmp_path).worker_threads == 2


def test_quebec_config_points_at_a_file_relative_to_cwd(tmp_path: Path) -> None:
    write(tmp_path, "workers: [{threads: 11}]\n", "deploy/jobs.yml")
    assert load(tmp_path, QUEBEC_CONFIG="deploy/jobs.yml").worker_threads == 11
    assert load(tmp_path, {"config_path": str(tmp_path / "deploy/jobs.yml")}).worker_threads == 11


def test_quebec_config_naming_a_missing_file_is_an_error(tmp_path: Path) -> None:
    message = error(tmp_path, QUEBEC_CONFIG="missing.yml")
    assert "QUEBEC_CONFIG" in message and "'missing.yml'" in message


def test_merge_keys_share_a_default_block(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
defaults: &defaults
  workers:
    - threads: 4
  dispatchers:
    - batch_size: 50
production:
  <<: *defaults
  dispatchers:
    - batch_size: 75
""",
    )
    settings = load(tmp_path, QUEBEC_ENV="production")
    assert settings.worker_threads == 4
    assert settings.dispatcher_batch_size == 75


def test_variables_are_expanded_from_the_given_environment(tmp_path: Path) -> None:
    write(tmp_path, "workers:\n  - threads: $THREADS\n    queues: ${QUEUE}\n")
    settings = load(tmp_path, THREADS="12", QUEUE="mail")
    assert settings.worker_threads == 12
    assert settings.worker_queues == ("mail",)


def test_unset_variable_is_left_as_written_and_then_rejected(tmp_path: Path) -> None:
    write(tmp_path, "workers:\n  - threads: ${THREADS}\n")
    assert error(tmp_path) == "queue.yml workers[0].threads must be an integer from 1 to 1,000, got '${THREADS}'"


def test_workers_and_dispatchers_entries_may_be_empty(tmp_path: Path) -> None:
    write(tmp_path, "workers: []\ndispatchers:\n  - \n")
    settings = load(tmp_path, QUEBEC_WORKER_THREADS="2")
    assert settings.workers == ()
    assert settings.worker_threads == 2
    assert settings.dispatchers == (DispatcherConfig(),)


def test_first_worker_follows_overrides_and_the_rest_do_not(tmp_path: Path) -> None:
    write(tmp_path, PRODUCTION)
    settings = load(tmp_path, {"queues": "urgent"}, QUEBEC_ENV="production", QUEBEC_WORKER_THREADS="8")
    assert settings.workers[0] == WorkerConfig(queues=("urgent",), threads=8, polling_interval=0.5, processes=2)
    assert settings.workers[1] == WorkerConfig(queues=("low",))
    assert load(tmp_path, {"dispatcher_batch_size": 9}, QUEBEC_ENV="production").dispatchers[0].batch_size == 9


# --- errors from queue.yml ---------------------------------------------------------------------


def test_bad_yaml_value_names_file_section_entry_and_value(tmp_path: Path) -> None:
    write(tmp_path, "production:\n  workers:\n    - threads: 0\n")
    message = error(tmp_path, QUEBEC_ENV="production")
    assert message == "queue.yml production.workers[0].threads must be an integer from 1 to 1,000, got 0"


def test_malformed_yaml_names_the_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, "workers:\n  - threads: 3\n   queues: [a\n", "config/queue.yml")
    with pytest.raises(ConfigError) as caught:
        load(tmp_path)
    assert str(caught.value).startswith("config/queue.yml line 3")
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_missing_environment_section_names_env_and_sections_found(tmp_path: Path) -> None:
    write(tmp_path, PRODUCTION + "staging:\n  workers: []\n")
    message = error(tmp_path, QUEBEC_ENV="test")
    assert "no 'test' section" in message
    assert "QUEBEC_ENV" in message
    assert "production, staging" in message


def test_unknown_worker_key_names_it_and_the_allowed_keys(tmp_path: Path) -> None:
    write(tmp_path, "workers:\n  - thread: 3\n")
    message = error(tmp_path)
    assert "queue.yml workers[0]" in message and "'thread'" in message
    assert "polling_interval, processes, queues, threads" in message
    assert "did you mean 'threads'" in message


def test_unknown_dispatcher_and_database_keys_are_errors(tmp_path: Path) -> None:
    write(tmp_path, "dispatchers:\n  - batch: 3\n")
    assert "'batch'" in error(tmp_path)
    write(tmp_path, "database:\n  uri: sqlite://\n")
    assert "'uri'" in error(tmp_path)


def test_unknown_section_setting_suggests_the_close_one(tmp_path: Path) -> None:
    write(tmp_path, "production:\n  shutdown_timout: 3\n")
    message = error(tmp_path, QUEBEC_ENV="production")
    assert message.startswith("queue.yml production.shutdown_timout is not a known setting")
    assert "did you mean 'shutdown_timeout'" in message


def test_misspelt_flat_key_is_reported_not_taken_for_an_environment(tmp_path: Path) -> None:
    write(tmp_path, "worker:\n  - threads: 3\n")
    assert "did you mean 'workers'" in error(tmp_path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- a\n- b\n", "must be a mapping"),
        ("production: 3\n", "production must be a mapping"),
        ("workers: {threads: 3}\n", "workers must be a list"),
        ("workers:\n  - '*'\n", "workers[0] must be a mapping"),
        ("workers: [{queues: 'a b'}]\n", "workers[0].queues is invalid"),
        ("dispatchers: [{concurrency_maintenance: maybe}]\n", "must be a boolean"),
    ],
)
def test_misshapen_yaml_is_an_error(tmp_path: Path, text: str, expected: str) -> None:
    write(tmp_path, text)
    assert expected in error(tmp_path, QUEBEC_ENV="production")


# --- errors from kwargs and the environment ----------------------------------------------------


def test_unknown_kwarg_lists_close_matches(tmp_path: Path) -> None:
    assert error(tmp_path, {"worker_thread": 3}) == (
        "unknown keyword argument 'worker_thread'; did you mean 'worker_threads'?"
    )
    assert "allowed ones are" in error(tmp_path, {"zzz": None})


def test_threads_is_not_an_alias_for_worker_threads(tmp_path: Path) -> None:
    assert "'threads'" in error(tmp_path, {"threads": 3})


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"QUEBEC_WORKER_THREADS": "many"}, "environment variable QUEBEC_WORKER_THREADS must be an integer"),
        ({"QUEBEC_DISPATCHER_BATCH_SIZE": "0"}, "QUEBEC_DISPATCHER_BATCH_SIZE must be an integer from 1 to 10,000"),
        ({"QUEBEC_USE_SKIP_LOCKED": "maybe"}, "QUEBEC_USE_SKIP_LOCKED must be a boolean"),
        ({"QUEBEC_SHUTDOWN_TIMEOUT": "-1"}, "QUEBEC_SHUTDOWN_TIMEOUT must not be negative"),
        ({"QUEBEC_WORKER_POLLING_INTERVAL": "0"}, "QUEBEC_WORKER_POLLING_INTERVAL must be a duration > 0"),
        ({"QUEBEC_CLEANUP_INTERVAL": "soon"}, "QUEBEC_CLEANUP_INTERVAL must be a number of seconds"),
        ({"QUEBEC_QUEUES": ","}, "QUEBEC_QUEUES names no queue"),
        ({"QUEBEC_DB_MAX_CONNECTIONS": "0"}, "QUEBEC_DB_MAX_CONNECTIONS must be an integer from 1 to 1,000"),
        ({"QUEBEC_ENV": "production", "QUEBEC_CONFIG": "/nonexistent/q.yml"}, "QUEBEC_CONFIG names"),
    ],
)
def test_bad_environment_value_names_the_variable(tmp_path: Path, env: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, env, cwd=str(tmp_path))
    assert expected in str(caught.value)


def test_bad_kwarg_names_the_keyword_argument(tmp_path: Path) -> None:
    expected = "keyword argument worker_threads must be an integer from 1 to 1,000, got 0"
    assert error(tmp_path, {"worker_threads": 0}) == expected
    assert "keyword argument worker_threads" in error(tmp_path, {"worker_threads": True})
    assert "keyword argument silence_polling" in error(tmp_path, {"silence_polling": "sometimes"})


@pytest.mark.parametrize(
    ("word", "expected"),
    [("1", True), ("TRUE", True), ("yes", True), ("On", True), ("0", False), ("False", False), ("no", False)],
)
def test_environment_booleans_accept_the_usual_words(tmp_path: Path, word: str, expected: bool) -> None:
    assert load(tmp_path, QUEBEC_QUIET_THEN_EXIT=word).quiet_then_exit is expected


def test_table_prefix_is_validated_and_names_its_source(tmp_path: Path) -> None:
    assert load(tmp_path, QUEBEC_TABLE_NAME_PREFIX="hive_").table_name_prefix == "hive"
    with pytest.raises(InvalidIdentifier, match="QUEBEC_TABLE_NAME_PREFIX is invalid: table prefix 'a-b'"):
        load(tmp_path, QUEBEC_TABLE_NAME_PREFIX="a-b")


# --- individual options ------------------------------------------------------------------------


def test_queues_accept_csv_env_list_kwarg_and_reject_bad_names(tmp_path: Path) -> None:
    assert load(tmp_path, QUEBEC_QUEUES="a, b*").worker_queues == ("a", "b*")
    assert load(tmp_path, {"queues": ["x", "y"]}).worker_queues == ("x", "y")
    with pytest.raises(InvalidIdentifier, match="keyword argument queues"):
        load(tmp_path, {"queues": ["a*b*"]})


def test_queue_concurrency_from_env_pairs_or_kwarg_mapping(tmp_path: Path) -> None:
    env = load(tmp_path, QUEBEC_EXPERIMENTAL_QUEUE_CONCURRENCY="reports=2, exports=1")
    assert dict(env.experimental_queue_concurrency) == {"reports": 2, "exports": 1}
    kwarg = load(tmp_path, {"experimental_queue_concurrency": {"reports": 3}})
    assert dict(kwarg.experimental_queue_concurrency) == {"reports": 3}
    assert "['reports'] must be an integer from 1 to 10,000, got 0" in error(
        tmp_path, {"experimental_queue_concurrency": {"reports": 0}}
    )
    assert "must look like 'reports=2,exports=1'" in error(tmp_path, QUEBEC_EXPERIMENTAL_QUEUE_CONCURRENCY="reports")


def test_ssl_options_need_a_postgres_url(tmp_path: Path) -> None:
    ok = load(tmp_path, {"database_url": "postgresql://db/app"}, QUEBEC_SSLMODE="Verify-Full")
    assert ok.sslmode == "verify-full"
    import quebec

    with pytest.raises(ConfigError) as caught:
        quebec.Quebec(f"sqlite:///{tmp_path}/x.db", sslrootcert="/ca.pem")
    assert "sslrootcert applies only to PostgreSQL" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        quebec.Quebec("mysql://u:secret@127.0.0.1:1/app", sslmode="require")
    assert "sslmode applies only to PostgreSQL" in str(caught.value) and "secret" not in str(caught.value)


def test_sslmode_allow_is_refused_with_the_alternatives(tmp_path: Path) -> None:
    message = error(tmp_path, QUEBEC_SSLMODE="allow")
    assert "QUEBEC_SSLMODE" in message and "'prefer' or 'require'" in message


def test_forced_queue_is_sanitised_and_an_empty_kwarg_clears_it(tmp_path: Path) -> None:
    assert load(tmp_path, QUEBEC_FORCE_OVERRIDE_QUEUE="feature/x y").force_override_queue == "feature-x-y"
    cleared = load(tmp_path, {"force_override_queue": ""}, QUEBEC_FORCE_OVERRIDE_QUEUE="branch")
    assert cleared.force_override_queue is None


def test_recycle_confirmations_of_zero_mean_one(tmp_path: Path) -> None:
    assert load(tmp_path, QUEBEC_WORKER_MEMORY_RECYCLE_CONFIRMATIONS="0").worker_memory_recycle_confirmations == 1


def test_alive_threshold_must_exceed_the_heartbeat(tmp_path: Path) -> None:
    message = error(tmp_path, {"process_heartbeat_interval": 60})
    assert "process_alive_threshold (30s) must be longer than process_heartbeat_interval (60s)" in message
    assert load(tmp_path, {"process_heartbeat_interval": 60, "process_alive_threshold": 300})


# --- parse_duration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (5, 5.0),
        (0.25, 0.25),
        (timedelta(minutes=2), 120.0),
        ("5", 5.0),
        ("5s", 5.0),
        ("250ms", 0.25),
        ("2m", 120.0),
        ("1.5h", 5400.0),
        ("1d", 86400.0),
        (" 3 S ", 3.0),
        ("0", 0.0),
    ],
)
def test_parse_duration_accepts_numbers_timedeltas_and_unit_strings(value: object, seconds: float) -> None:
    assert parse_duration(value, name="x") == seconds


@pytest.mark.parametrize(
    "value",
    [-1, "-5s", timedelta(seconds=-1), "5 parsecs", "", True, None, float("nan"), float("inf"), 10**400],
)
def test_parse_duration_rejects_negative_and_garbage(value: object) -> None:
    with pytest.raises(ConfigError, match="^shutdown_timeout must"):
        parse_duration(value, name="shutdown_timeout")


# --- the Settings value ------------------------------------------------------------------------


def test_settings_are_frozen_hashable_and_picklable(tmp_path: Path) -> None:
    settings = load(tmp_path, QUEBEC_EXPERIMENTAL_QUEUE_CONCURRENCY="a=1")
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.worker_threads = 4  # type: ignore[misc]
    assert hash(settings) == hash(pickle.loads(pickle.dumps(settings)))
    assert pickle.loads(pickle.dumps(settings)) == settings


def test_settings_built_by_hand_are_validated_and_normalised() -> None:
    settings = Settings(shutdown_timeout=timedelta(seconds=3), worker_queues=["a"])  # type: ignore[arg-type]
    assert settings.shutdown_timeout == 3.0 and settings.worker_queues == ("a",)
    with pytest.raises(ConfigError, match=r"^Settings\.worker_threads must be an integer from 1 to 1,000, got 0$"):
        Settings(worker_threads=0)
    with pytest.raises(ConfigError, match=r"^WorkerConfig\.processes"):
        WorkerConfig(processes=0)


def test_repr_hides_the_database_password() -> None:
    text = repr(Settings(database_url="postgresql://app:hunter2@db/prod"))
    assert "hunter2" not in text and "postgresql://app:***@db/prod" in text


def test_two_instances_in_one_process_notify_on_their_own_channel(tmp_path: Path) -> None:
    # The channel was a module global that the last Quebec() overwrote for every instance.
    import psycopg

    import quebec
    from conftest import backend_url, drop_prefix, eventually

    url = backend_url("postgresql", tmp_path)
    prefix = f"t_{secrets.token_hex(4)}"
    first = quebec.Quebec(url, table_name_prefix=prefix, name="quebec_first")
    second = quebec.Quebec(url, table_name_prefix=prefix, name="quebec_second")
    try:
        first.create_tables()

        @first.register_job
        class Announced(quebec.BaseClass):
            def perform(self) -> None:
                pass

        with psycopg.connect(url, autocommit=True) as listener:
            listener.execute("LISTEN quebec_first")
            Announced.perform_later()
            heard: list[str] = []
            eventually(lambda: heard.extend(n.channel for n in listener.notifies(timeout=0.05, stop_after=1)) or heard)
            assert heard == ["quebec_first"]
        assert (first.db.channel, second.db.channel) == ("quebec_first", "quebec_second")
    finally:
        first.close()
        second.close()
        drop_prefix(url, prefix)
