"""A large file not parsed before is parsed by a child process, so its garbage dies with it.

PyYAML builds a node object for every scalar, mapping and sequence, then the document from the
nodes, then frees the nodes: for 100,000 alerts, millions of small objects. The memory they
leave is scattered among what is kept, so the allocator can never give it back: a scheduler
that parsed its 100,000-alert file itself held 600 MB, against 190 MB after reading the same
document as JSON. So the child parses, stores the document in the parsed-config cache
(:mod:`sentinel.config.parsed_cache`), and exits; the caller reads the stored JSON.

When the child cannot do it (no cache, a YAML error, a document JSON cannot hold, no process
to spare) the caller parses the file itself, as it always did: the child can only save memory,
never change what a load returns or how it fails.
"""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

#: Smaller files are parsed in process: the child's start-up (a tenth of a second) would cost
#: more than their parse leaves behind.
FROM_BYTES = 4 * 1024 * 1024
#: A parse slower than this is given up on, and done in process.
TIMEOUT_SECONDS = 600.0


def parse_in_child(path: str) -> bool:
    """Whether a child process parsed ``path`` and stored its document (read it from the
    cache now: if the file changed meanwhile, the key will not match, and the caller parses)."""
    from sentinel.config.parsed_cache import cache_directory

    if cache_directory() is None:
        return False
    try:
        done = subprocess.run(  # noqa: S603 - this interpreter, this module, the file it loads
            [sys.executable, "-m", __name__, path],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def main(argv: list[str]) -> int:
    import yaml

    from sentinel.config.loader import parse_yaml
    from sentinel.config.parsed_cache import store_document

    text = Path(argv[1]).read_text(encoding="utf-8")
    gc.disable()  # nothing here is garbage until the process ends
    try:
        data = parse_yaml(text)
    except yaml.YAMLError:
        return 1  # the caller parses it, and reports where
    if not isinstance(data, dict):
        return 1
    store_document(text, yaml.__version__, data)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
