"""Settings: keyword arguments > QUEBEC_* environment > queue.yml > defaults, validated once."""

from quebec.config.rules import parse_duration
from quebec.config.settings import DispatcherConfig, Settings, WorkerConfig, run_options
from quebec.config.sources import load_settings

__all__ = ["DispatcherConfig", "Settings", "WorkerConfig", "load_settings", "parse_duration", "run_options"]
