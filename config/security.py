"""The Content-Security-Policy every response carries.

Pages load scripts, styles, images and fonts from this origin only, run no inline script or
style, post forms and fetch only here, and cannot be framed. What the pages need besides:

- `img-src data:`: Swagger UI's stylesheet draws its icons as data: URLs (a data: image runs no
  script);
- nothing else: the settings pages keep their behaviour in static/js/app.js and their looks in
  static/css/app.css, htmx's own indicator <style> is turned off (the htmx-config meta tag in
  base.html; app.css has the rules), the Django admin has no inline script or style, and the
  Swagger UI is served by SpectacularSwaggerSplitView, whose set-up script is a file.

A response that already names its own policy keeps it (the tts audio answers a stricter one).
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

HEADER = "Content-Security-Policy"
POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ]
)


class ContentSecurityPolicyMiddleware:
    """Adds POLICY to every response that has none; first in MIDDLEWARE after SecurityMiddleware,
    so static files (answered by WhiteNoise) and error pages get it too."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if HEADER not in response:
            response[HEADER] = POLICY
        return response
