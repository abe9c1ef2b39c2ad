"""gunicorn's access log, without the one secret a URL carries: an invitation link's token
(`/invite/<token>/`, which accepts a workspace invitation) is logged as `/invite/…/`."""

from __future__ import annotations

import re
from typing import Any

from gunicorn.glogging import Logger

INVITATION_TOKEN = re.compile(r"(/invite/)[^/?\s\"]+")


def scrub(text: str) -> str:
    return INVITATION_TOKEN.sub(r"\1…", text)


class ScrubbedLogger(Logger):
    def atoms(self, resp: Any, req: Any, environ: dict, request_time: Any) -> dict:
        atoms = super().atoms(resp, req, environ, request_time)
        for name in ("r", "U", "f"):  # the request line, the path, the Referer
            if isinstance(atoms.get(name), str):
                atoms[name] = scrub(atoms[name])
        return atoms
