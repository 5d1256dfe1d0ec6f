"""Every closed set of names SQL Sentinel stores, sends or compares, one ``StrEnum`` each.

These values are written to the state tables, the webhook payload, ``--json`` output and the API,
so they are part of the contract and never change spelling. As ``StrEnum`` members they are plain
strings to SQL drivers, JSON and Jinja2, while code that names them (``ExecutionStatus.SUCESS``)
fails in mypy instead of silently comparing unequal.
"""

from __future__ import annotations

from enum import StrEnum


class ExecutionStatus(StrEnum):
    """A row of ``sqlsentinel_executions`` (the contract's execution status, plus its lifecycle)."""

    #: The query ran and said OK.
    SUCCESS = "success"
    #: The query ran and said ALERT.
    FAILURE = "failure"
    #: It could not run, or its result broke the contract.
    ERROR = "error"
    #: Claimed by a process that has not finished it yet.
    RUNNING = "running"
    #: Never run: too late to be worth running, or its message was stale.
    SKIPPED = "skipped"


#: The statuses of a run that has ended with an outcome (what statistics count).
FINISHED = (ExecutionStatus.SUCCESS, ExecutionStatus.FAILURE, ExecutionStatus.ERROR)


#: The statuses that make ``run`` and ``enqueue --wait`` exit 1: the alert fired or could not run.
NEEDS_ATTENTION = (ExecutionStatus.FAILURE, ExecutionStatus.ERROR)


class Outcome(StrEnum):
    """What one run's query said, as the rules read it (``executions.result_status``)."""

    ALERT = "ALERT"
    OK = "OK"
    ERROR = "ERROR"
    #: The query returned no row, and ``on_no_data: keep`` says to act as if it had not run.
    NODATA = "NODATA"


class AlertStatus(StrEnum):
    """An alert's standing (``sqlsentinel_state.current_status``); ``None`` until its first run."""

    OK = "OK"
    ALERT = "ALERT"
    #: ALERT seen, but fewer times in a row than ``fire_after`` asks for.
    PENDING = "PENDING"


class Event(StrEnum):
    """Why a notification is sent: the webhook payload's ``event``."""

    FIRING = "firing"
    RESOLVED = "resolved"
    ERROR = "error"


class DeliveryStatus(StrEnum):
    """An outbox row's delivery (``sqlsentinel_outbox.status``)."""

    PENDING = "pending"
    #: Leased by a notifier that is sending it now.
    SENDING = "sending"
    SENT = "sent"
    #: Given up after every round of retries, or refused for good by the receiver.
    FAILED = "failed"
    #: What a dry run would have sent; only in its result, never stored.
    DRY_RUN = "dry-run"


class Channel(StrEnum):
    """Where a notification goes (an alert's ``notify[].channel``)."""

    EMAIL = "email"
    SLACK = "slack"
    WEBHOOK = "webhook"


class Reason(StrEnum):
    """Why :func:`sentinel.rules.decide` notified or kept quiet; a counted reason carries its count
    (``pending 1/3``) in ``Transition.progress``."""

    NO_DATA_KEPT = "no data: state kept"
    QUERY_ERROR = "query error"
    ERROR_COUNTING = "error"
    ERROR_WHILE_SILENCED = "error while silenced"
    QUERY_FAILING = "query failing"
    HELD_RECOVERY = "held recovery"
    OK = "ok"
    RESOLVING = "resolving"
    RESOLVED = "resolved"
    RESOLVED_WHILE_MUTED = "resolved during a mute window: held"
    PENDING = "pending"
    INTO_ALERT = "transition into ALERT"
    MUTE_OVER = "mute window over, still firing"
    ALREADY_FIRING = "already firing"
    REPEAT = "repeat while firing"
    SILENCED = "silenced"
    MUTED = "muted: held until the window ends"
    MIN_INTERVAL = "inside the minimum interval"
