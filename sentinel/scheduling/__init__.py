"""Scheduling: when each alert is due, and the clock that submits its runs.

- :mod:`~sentinel.scheduling.cron`: cron maths per time zone (slots, DST as cron(8) does it);
- :mod:`~sentinel.scheduling.due`: the heap of due runs, one entry per shared schedule;
- :mod:`~sentinel.scheduling.loop`: the clock loop (catch-up, config reloads), whose ``submit``
  decides what happens to a due run;
- :mod:`~sentinel.scheduling.inprocess`: the runner with no broker, executing due runs here.

The fleet's side of it (the Redis lease, slot keys, the sweeper) lives in ``workers.scheduler``.
"""
