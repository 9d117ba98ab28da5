"""Template text: `{{ name }}` placeholders and nothing else.

No expressions, filters, loops or attribute access, so a template can never run code (jinja2 would
be both a sandbox risk and a Lambda-bundle cost). Substitution is one pass, so a variable value
that itself contains `{{ x }}` stays literal text.
"""

from __future__ import annotations

from collections.abc import Mapping

from llmops.domain.guard import safe_regex

__all__ = ["is_variable_name", "placeholders", "substitute", "syntax_problems"]

_VARIABLE_RE = safe_regex.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_PLACEHOLDER_RE = safe_regex.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]{0,63})\s*\}\}")
# Anything that opens template syntax but is not a plain placeholder is rejected at push time.
_SYNTAX_OPENERS = ("{{", "{%", "{#")


def is_variable_name(name: str) -> bool:
    return _VARIABLE_RE.match(name) is not None


def placeholders(template: str) -> tuple[str, ...]:
    """Variable names used by `template`, in first-use order."""
    seen: dict[str, None] = {}
    for match in _PLACEHOLDER_RE.finditer(template):
        seen.setdefault(match.group(1), None)
    return tuple(seen)


def syntax_problems(template: str, where: str) -> list[str]:
    """What in `template` opens template syntax other than a plain placeholder (empty: none)."""
    leftover = _PLACEHOLDER_RE.sub("", template)
    found = sorted({opener for opener in _SYNTAX_OPENERS if opener in leftover})
    if not found:
        return []
    return [
        f"{where}: unsupported template syntax ({', '.join(repr(f) for f in found)}); "
        "only {{ name }} placeholders are allowed"
    ]


def substitute(template: str, values: Mapping[str, str]) -> str:
    # One pass: replacement text is never scanned again, so values cannot inject placeholders.
    return _PLACEHOLDER_RE.sub(lambda m: values[m.group(1)], template)
