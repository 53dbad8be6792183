"""The look shared by graftlab's HTML pages: ``report.html`` (reporting) and ``monitor.html`` (monitoring) are Jinja
templates that include one stylesheet, ``core/templates/page.css``, inline, so each page stays a single offline file
and both read alike."""

from __future__ import annotations

from typing import Any

__all__ = ["page_environment"]


def page_environment(package: str) -> Any:
    """A Jinja environment for the templates in ``package``'s ``templates`` folder; they can
    ``{% include "page.css" %}``.

    HTML is autoescaped, and a name the template reads but is not given is an error when the page renders.
    """
    from jinja2 import ChoiceLoader, Environment, PackageLoader, StrictUndefined, select_autoescape

    return Environment(
        loader=ChoiceLoader([PackageLoader(package, "templates"), PackageLoader(__package__, "templates")]),
        autoescape=select_autoescape(["html", "j2"], default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
