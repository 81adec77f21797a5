"""What the server says about its own files: error messages name a file, never where it lives.

Messages are written for the command line, where the full path helps (``/srv/labels.db: item ...``);
a browser gets the file's name alone, so the store's location, the pool's folder or an upload's
temporary folder never leave the server.
"""

from __future__ import annotations

import os
import re

# An absolute path of two or more parts, not inside a URL (http://host/a/b) or a relative path (a/b/c).
_PATH = re.compile(r"(?<![\w.:/~-])(/[^\s/'\"(),:;]+)(?:/[^\s/'\"(),:;]*)+")


def public_message(message: str) -> str:
    """``message`` with every path under one of the server's top folders (/tmp, /home, ...) cut to
    its last part; other text (a route such as /api/labels) stays as it is."""

    def name_only(match: re.Match) -> str:
        if not os.path.isdir(match.group(1)):
            return match.group(0)
        return os.path.basename(match.group(0).rstrip("/")) or "/"

    return _PATH.sub(name_only, message)
