"""The runbooks riskd serves at ``/runbooks/<alert>``: one ``### AlertName`` section per alert of
``runbooks.md`` (package data, also spliced into docs/operations.md), rendered with markdown-it.

Served by riskd itself so that the absolute ``runbook_url`` of every Prometheus alert
(``<metrics.external_url>/runbooks/<alert>``) opens from Alertmanager, Grafana or a pager, with no
repository checkout and no internet.
"""

from __future__ import annotations

import html
import re
from functools import cache
from importlib import resources

from markdown_it import MarkdownIt

SOURCE = "runbooks.md"
_SECTION = re.compile(r"^### (\S+)\s*$", re.MULTILINE)
_STYLE = (
    "body{font:16px/1.5 system-ui,sans-serif;max-width:46em;margin:1em auto;padding:0 1em;color:#222}"
    "code{background:#f2f2f2;padding:0 .2em}a{color:#0645ad}"
)


def source_text() -> str:
    """The Markdown source, from the installed package."""
    return resources.files("riskd.http").joinpath("runbooks", SOURCE).read_text(encoding="utf-8")


def docs_section() -> str:
    """What docs/operations.md carries between its runbook markers: the sections, without the header."""
    text = source_text()
    first = _SECTION.search(text)  # the first real heading: the header comment mentions "### AlertName"
    return text[first.start() :] if first else text


@cache
def sections() -> dict[str, str]:
    """Alert name → its Markdown (without the heading), in file order."""
    text = source_text()
    heads = list(_SECTION.finditer(text))
    out = {}
    for i, m in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
        out[m.group(1)] = text[m.end() : end].strip()
    return out


def runbook_url(base_url: str, alert: str) -> str:
    """The absolute link of one alert's runbook."""
    return f"{base_url.rstrip('/')}/runbooks/{alert}"


def _page(title: str, body_html: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f'<p><a href="/runbooks/">all runbooks</a> · <a href="/">status</a></p>{body_html}</body></html>'
    )


def page_html(alert: str) -> str | None:
    """The runbook page of ``alert`` (case-insensitive), or None when there is none."""
    by_lower = {name.lower(): name for name in sections()}
    name = by_lower.get(alert.lower())
    if name is None:
        return None
    body = MarkdownIt("commonmark").render(sections()[name])
    return _page(f"riskd runbook: {name}", f"<h1>{html.escape(name)}</h1>{body}")


def index_html() -> str:
    """A list of every runbook."""
    items = "".join(f'<li><a href="/runbooks/{n}">{html.escape(n)}</a></li>' for n in sections())
    return _page("riskd runbooks", f"<h1>riskd runbooks</h1><ul>{items}</ul>")
