"""Reading a config file: YAML, and ``${VAR}`` / ``${VAR:-default}`` from the environment.

Only the braced form is substituted, in any string value, so ``$HOME`` or ``$1`` inside SQL stay
as written; ``$${`` writes a literal ``${``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

from sentinel.config import parse_elsewhere
from sentinel.config.parsed_cache import cached_document, store_document
from sentinel.errors import ConfigurationError, Issue, ValidationError

# ${VAR} or ${VAR:-default}; $${ is an escaped literal "${". $VAR and $1 are never touched.
_ENV_REF = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def substitute_env(
    value: str, where: str, issues: list[Issue], environ: dict[str, str] | None = None
) -> str:
    """Replace ``${VAR}`` and ``${VAR:-default}``; record a missing variable as an issue."""
    if "${" not in value:  # most values (every query of a large config, say) have none
        return value
    env = os.environ if environ is None else environ

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        issues.append(Issue(None, None, where, f"environment variable {name} is not set"))
        return ""

    return _ENV_REF.sub(replace, value)


def parse_yaml(text: str) -> Any:
    """The document of a config's text (safe tags only), or ``yaml.YAMLError``; libyaml when
    present, several times faster on files with hundreds of alerts."""
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506


class ConfigLoader:
    """Reads a YAML configuration file and substitutes ``${VAR}`` references."""

    def __init__(self, path: str | os.PathLike[str], environ: dict[str, str] | None = None):
        self.path = str(path)
        self.environ = environ
        self.raw_text: str | None = None

    def load(self) -> dict[str, Any]:
        try:
            self.raw_text = Path(self.path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigurationError(f"{self.path}: file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigurationError(f"{self.path}: cannot read: {exc}") from None
        # A large file seen before is not parsed again; others go through libyaml (CSafeLoader).
        data = cached_document(self.raw_text, yaml.__version__)
        large = len(self.raw_text) >= parse_elsewhere.FROM_BYTES
        # Parsed by a child, so this process keeps none of the parse's garbage.
        if data is None and large and parse_elsewhere.parse_in_child(self.path):
            data = cached_document(self.raw_text, yaml.__version__)
        if data is None:
            data = self._parse(self.raw_text)
            if isinstance(data, dict):
                store_document(self.raw_text, yaml.__version__, data)
        if not isinstance(data, dict):
            raise ConfigurationError(
                f"{self.path}: expected a mapping with 'database' and 'alerts'"
            )
        issues: list[Issue] = []
        result = self._substitute(data, "", issues, data)
        if issues:
            raise ValidationError([Issue(self.path, i.alert, i.field, i.message) for i in issues])
        return dict(result)

    def _parse(self, text: str) -> Any:
        try:
            return parse_yaml(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise ConfigurationError(f"{self.path}{where}: invalid YAML: {problem}") from None

    def _substitute(self, node: Any, where: str, issues: list[Issue], root: dict[str, Any]) -> Any:
        if isinstance(node, str):
            if "${" not in node:
                return node
            found: list[Issue] = []
            value = substitute_env(node, where, found, self.environ)
            issues.extend(_locate(i, root) for i in found)
            return value
        if isinstance(node, dict):
            return {
                k: self._substitute(v, f"{where}.{k}" if where else str(k), issues, root)
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [self._substitute(v, f"{where}[{i}]", issues, root) for i, v in enumerate(node)]
        return node


def _locate(issue: Issue, root: dict[str, Any]) -> Issue:
    """Turn a path like ``alerts[2].notify[0].webhook_url`` into alert name + field."""
    match = re.match(r"^alerts\[(\d+)\]\.?(.*)$", issue.field or "")
    if not match:
        return issue
    alerts = root.get("alerts")
    index = int(match.group(1))
    name = None
    if isinstance(alerts, list) and index < len(alerts) and isinstance(alerts[index], dict):
        name = alerts[index].get("name")
    return Issue(issue.file, str(name) if name else f"#{index + 1}", match.group(2), issue.message)
