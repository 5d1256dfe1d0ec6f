"""A worker's one line per run leaves in batches: every line, in order, masked, and a warning at
once (``sentinel.logs.BatchingHandler``)."""

from __future__ import annotations

import logging
import time

from sentinel.logs import RedactingFilter, batch_stream_handlers


class Pipe:
    """Stands for Dramatiq's log pipe: records each write the handler makes."""

    def __init__(self) -> None:
        self.writes: list[str] = []

    def write(self, text: str) -> None:
        self.writes.append(text)

    def flush(self) -> None:
        pass


def _logger(pipe: Pipe) -> logging.Logger:
    logger = logging.getLogger(f"test_hot_path_logs.{id(pipe)}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = logging.StreamHandler(pipe)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(RedactingFilter())
    logger.handlers[:] = [handler]
    return logger


def _wait_for(pipe: Pipe, lines: int) -> None:
    deadline = time.monotonic() + 5
    while "".join(pipe.writes).count("\n") < lines and time.monotonic() < deadline:
        time.sleep(0.01)


def test_lines_leave_together_in_order_and_masked() -> None:
    pipe = Pipe()
    logger = _logger(pipe)
    (batching,) = batch_stream_handlers(logger)
    for i in range(50):
        logger.info("execution alert=a%d url=postgresql://u:secret@h/db", i)
    _wait_for(pipe, 50)
    text = "".join(pipe.writes)
    assert text.splitlines() == [
        f"INFO execution alert=a{i} url=postgresql://u:***@h/db" for i in range(50)
    ]
    assert len(pipe.writes) < 10  # batched: not one write per line
    batching.stop_batching()


def test_a_warning_goes_out_at_once_with_the_lines_before_it() -> None:
    pipe = Pipe()
    logger = _logger(pipe)
    (batching,) = batch_stream_handlers(logger)
    batching.interval = 60.0  # the flusher would wait a minute
    logger.info("first")
    logger.warning("trouble")
    assert "".join(pipe.writes).splitlines() == ["INFO first", "WARNING trouble"]
    batching.stop_batching()


def test_after_shutdown_every_line_is_written_straight_through() -> None:
    pipe = Pipe()
    logger = _logger(pipe)
    (batching,) = batch_stream_handlers(logger)
    batching.interval = 60.0
    logger.info("gathered")
    batching.stop_batching()  # the worker shuts down: what was gathered is written
    assert pipe.writes == ["INFO gathered\n"]
    logger.info("stopping")
    assert pipe.writes[-1] == "INFO stopping\n"
