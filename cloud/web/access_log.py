"""The hub's access log: gunicorn's own line (its default format: address, time, request line,
status, size, referrer, user agent), built from those fields alone.

gunicorn builds every request header, response header and WSGI environment variable into the
fields of the line on every request, in case the format names one; that was a thirtieth of
the hub's time on a quick API call. With a format of its own (``--access-logformat`` in a
gunicorn configuration) the line is built as gunicorn builds it.
"""

from __future__ import annotations

from gunicorn.glogging import Logger


class AccessLog(Logger):
    """gunicorn's logger, with the default access line built from its own fields."""

    def atoms(self, resp, req, environ, request_time):
        if self.cfg.access_log_format != self.cfg.settings["access_log_format"].default:
            return super().atoms(resp, req, environ, request_time)
        status = resp.status
        if isinstance(status, str):
            status = status.split(None, 1)[0]
        sent = getattr(resp, "sent", None)
        return {
            "h": environ.get("REMOTE_ADDR", "-"),
            "l": "-",
            "u": self._get_user(environ) or "-",
            "t": self.now(),
            "r": f"{environ['REQUEST_METHOD']} {environ['RAW_URI']} "
                 f"{environ['SERVER_PROTOCOL']}",
            "s": status,
            "b": str(sent) if sent is not None else "-",
            "f": environ.get("HTTP_REFERER", "-"),
            "a": environ.get("HTTP_USER_AGENT", "-"),
        }
