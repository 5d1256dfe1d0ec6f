"""Shared fixtures, one module per kind of real component (each module says which it starts).

Listed so that a module comes after the ones it imports: pytest rewrites a plugin's asserts only
if it registers the module before anything imports it.
"""

pytest_plugins = ["tests.servers", "tests.databases", "tests.fleet", "tests.api_app"]
