"""Dramatiq middleware of SQL Sentinel's own, one class per module."""
