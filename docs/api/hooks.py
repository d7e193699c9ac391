"""mkdocs hook of the docs site (mkdocs.yml ``hooks:``): a command-line usage line in a docstring,
``apps/train.py recipe=NAME|PATH [run_dir=PATH] [resume=auto|PATH]``, reads to Markdown as
reference links ``[text][target]``; mkdocs-autorefs then warns that it cannot find the target
``resume=auto|PATH`` and ``--strict`` aborts. A target with ``=`` in it names no Python object,
so only those warnings are dropped: a real broken cross-reference still fails the build."""

from __future__ import annotations

import logging
import re

USAGE_TARGET = re.compile(r"Could not find cross-reference target '[^']*=[^']*'")


class _UsageWords(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not USAGE_TARGET.search(record.getMessage())


def on_config(config: object) -> None:
    # on mkdocs' handlers, its strict-mode warning counter among them (added when the build
    # starts, before this event): a logger's own filter would not see its child loggers' records
    for handler in logging.getLogger("mkdocs").handlers:
        if not any(isinstance(f, _UsageWords) for f in handler.filters):
            handler.addFilter(_UsageWords())


# Sphinx roles in the docstrings (``:class:`~eddies.core.Recipe```) reach the page as
# ``:class:<code>~eddies.core.Recipe</code>``: each becomes an optional cross-reference that
# mkdocs-autorefs links when the object is on the site and leaves as code when it is not
# (a relative name, a torch object); ``~`` shows the last component only, as Sphinx does.
ROLE = re.compile(r":(?:class|func|meth|mod|attr|exc|data|obj):<code>(~?)([\w.]+)</code>")


def _cross_reference(match: re.Match[str]) -> str:
    short, target = match.groups()
    title = target.rsplit(".", 1)[-1] if short else target
    return f'<autoref identifier="{target}" optional><code>{title}</code></autoref>'


def on_page_content(html: str, page: object, config: object, files: object) -> str:
    return ROLE.sub(_cross_reference, html)
