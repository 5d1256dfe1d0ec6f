"""Alert configuration: the YAML file, ``${VAR}`` substitution, pydantic models and validation.

Validation never stops at the first problem: every alert is checked and every problem is reported
together with the file, the alert and the field, so an analyst fixes a file in one pass.
"""

from sentinel.config.loader import ConfigLoader, substitute_env
from sentinel.config.models import (
    INHERITED,
    AlertConfig,
    DatabaseConfig,
    MuteWindow,
    NotificationConfig,
    SentinelConfig,
)
from sentinel.config.validator import ConfigValidator, load_config, register_config_secrets

__all__ = [
    "INHERITED",
    "AlertConfig",
    "ConfigLoader",
    "ConfigValidator",
    "DatabaseConfig",
    "MuteWindow",
    "NotificationConfig",
    "SentinelConfig",
    "load_config",
    "register_config_secrets",
    "substitute_env",
]
