"""Django template syntax to Liquid, for migration 0010 (the file name keeps Django's migration
loader away from it). Frozen with that migration: later changes to Herald's templates must not
change what it did.

``django_to_liquid(source)`` converts what Herald's Django engine accepted (the built-in tags and
filters, no loaders) where Liquid has an equivalent: variables (``a.b.0`` as ``a.b[0]``, the
``forloop`` counters), the filters below, ``if``/``elif``/``else`` with ``and``, ``or``, ``not``,
comparisons, ``in`` and ``is`` (Liquid reads ``and``/``or`` right to left and has no ``not``:
terms are reordered, comparisons flipped, and a negated condition becomes ``unless``), ``for``
with ``empty`` and ``reversed``, ``with``, ``firstof``, ``comment``, ``{# #}``, ``verbatim``,
``templatetag``, ``spaceless`` and ``load`` (dropped). A filter inside a condition or a loop's
sequence is computed by an ``assign`` just before the tag. Anything else raises
``NotConvertible`` with the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.template.base import Lexer, Token, TokenType, filter_re
from django.utils.text import unescape_string_literal


class NotConvertible(ValueError):
    """The template uses something Liquid cannot express the same way; the message says what."""


# Django filter -> (Liquid filter, whether it takes Django's argument, extra Liquid arguments)
_FILTERS: dict[str, tuple[str, bool, str]] = {
    "upper": ("upcase", False, ""),
    "lower": ("downcase", False, ""),
    "escape": ("escape", False, ""),
    "force_escape": ("escape", False, ""),
    "safe": ("safe", False, ""),
    "striptags": ("strip_html", False, ""),
    "length": ("size", False, ""),
    "first": ("first", False, ""),
    "last": ("last", False, ""),
    "urlencode": ("url_encode", False, ""),
    "linebreaksbr": ("newline_to_br", False, ""),
    "default": ("default", True, ""),
    "join": ("join", True, ""),
    "cut": ("remove", True, ""),
    # Django counts its ellipsis in the length and ends words with " …": so do these.
    "truncatechars": ("truncate", True, ', "…"'),
    "truncatewords": ("truncatewords", True, ', " …"'),
}
_LOOP = {"counter": "index", "counter0": "index0", "revcounter": "rindex", "revcounter0": "rindex0",
         "first": "first", "last": "last", "parentloop": "parentloop"}  # fmt: skip
_TEMPLATETAG = {"openblock": "{%", "closeblock": "%}", "openvariable": "{{",
                "closevariable": "}}", "openbrace": "{", "closebrace": "}",
                "opencomment": "{#", "closecomment": "#}"}  # fmt: skip
# Words Liquid reads as keywords, not names: inside a path they become ["word"].
_KEYWORDS = frozenset(
    [
        "true",
        "false",
        "nil",
        "null",
        "empty",
        "blank",
        "and",
        "or",
        "not",
        "in",
        "contains",
        "with",
        "for",
        "as",
        "required",
        "if",
        "else",
        "reversed",
        "limit",
        "offset",
        "cols",
        "continue",
        "break",
    ]
)
_NUMBER = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$")
_COMPARISONS = {"==": "!=", "!=": "==", "<": ">=", ">=": "<", ">": "<=", "<=": ">"}


def django_to_liquid(source: str) -> str:
    """``source`` (Django template syntax) as Liquid. Raises NotConvertible."""
    return _Converter().convert(source)


def _string(value: str) -> str:
    if '"' not in value:
        return f'"{value}"'
    if "'" not in value:
        return f"'{value}'"
    raise NotConvertible("a string literal holds both kinds of quotes")


def _operand(constant: str | None, var: str | None) -> str:
    if constant is not None:
        if constant.startswith("_("):
            constant = constant[2:-1]
        return _string(unescape_string_literal(constant))
    assert var is not None
    if _NUMBER.match(var):
        return var
    if var in ("True", "False", "None"):
        return {"True": "true", "False": "false", "None": "nil"}[var]
    segments = var.split(".")
    if segments[0][:1].isdigit() or segments[0] in _KEYWORDS:
        raise NotConvertible(f"cannot read the variable {var!r} in Liquid")
    out = segments[0]
    loop = segments[0] == "forloop"
    for segment in segments[1:]:
        if loop and segment in _LOOP:
            out += f".{_LOOP[segment]}"
            loop = segment == "parentloop"
            continue
        loop = False
        if segment.isdigit():
            out += f"[{segment}]"
        elif segment in _KEYWORDS:
            out += f'["{segment}"]'
        else:
            out += f".{segment}"
    return out


@dataclass
class _Expression:
    """A Django filter expression split up: its operand and its (Django) filters."""

    operand: str
    filters: list[tuple[str, str | None]]  # (name, Liquid argument)


def _parse_expression(text: str) -> _Expression:
    operand: str | None = None
    filters: list[tuple[str, str | None]] = []
    upto = 0
    for match in filter_re.finditer(text):
        start = match.start()
        if upto != start:
            raise NotConvertible(f"cannot read {text!r}")
        if operand is None:
            operand = _operand(match["constant"], match["var"])
        else:
            arg = None
            if match["constant_arg"] is not None or match["var_arg"] is not None:
                arg = _operand(match["constant_arg"], match["var_arg"])
            filters.append((match["filter_name"], arg))
        upto = match.end()
    if operand is None or upto != len(text):
        raise NotConvertible(f"cannot read {text!r}")
    return _Expression(operand, filters)


def _liquid_filters(expression: _Expression) -> str:
    parts = [expression.operand]
    for name, arg in expression.filters:
        if name not in _FILTERS:
            raise NotConvertible(f"the filter {name!r} has no Liquid equivalent here")
        liquid_name, takes_arg, extra = _FILTERS[name]
        if takes_arg != (arg is not None):
            raise NotConvertible(f"the filter {name!r} is used with unexpected arguments")
        parts.append(f"{liquid_name}: {arg}{extra}" if takes_arg else liquid_name)
    return " | ".join(parts)


class _Converter:
    def __init__(self) -> None:
        self.out: list[str] = []
        self.blocks: list[tuple[str, int]] = []  # open block tags, where each began in ``out``
        self.hoisted = 0

    def convert(self, source: str) -> str:
        in_comment: list[str] | None = None
        for token in Lexer(source).tokenize():
            if in_comment is not None:
                if token.token_type == TokenType.BLOCK and token.contents == "endcomment":
                    self.out.append(
                        "{% comment %}" + _inert("".join(in_comment)) + "{% endcomment %}"
                    )
                    in_comment = None
                else:
                    in_comment.append(_raw(token))
            elif token.token_type == TokenType.TEXT:
                self.out.append(token.contents)
            elif token.token_type == TokenType.COMMENT:
                self.out.append("{% comment %}" + _inert(token.contents) + "{% endcomment %}")
            elif token.token_type == TokenType.VAR:
                self.out.append(self.output(token.contents))
            elif token.contents.split()[:1] == ["comment"]:
                in_comment = []
            else:
                self.block(token)
        if in_comment is not None or self.blocks:
            raise NotConvertible("a block is not closed")
        return "".join(self.out)

    # --- {{ ... }} ---

    def output(self, text: str) -> str:
        expression = _parse_expression(text)
        if expression.filters and expression.filters[-1][0] == "pluralize":
            return self.pluralize(expression)
        return "{{ " + _liquid_filters(expression) + " }}"

    def pluralize(self, expression: _Expression) -> str:
        _name, arg = expression.filters.pop()
        count = self.plain(expression, at=len(self.out))
        suffixes = unescape_string_literal(arg) if arg else "s"
        singular, _, plural = suffixes.rpartition(",") if "," in suffixes else ("", "", suffixes)
        if "," in singular or "{" in suffixes or "%" in suffixes:
            raise NotConvertible("pluralize is used with unexpected arguments")
        if not singular:
            return f"{{% if {count} != 1 %}}{plural}{{% endif %}}"
        return f"{{% if {count} == 1 %}}{singular}{{% else %}}{plural}{{% endif %}}"

    def plain(self, expression: _Expression, at: int | None = None) -> str:
        """An operand Liquid can use in a condition: ``x|length`` is ``x.size``; any other
        filter is computed by an ``assign`` at ``at``, by default before the innermost open
        block's tag."""
        if not expression.filters:
            return expression.operand
        if expression.filters == [("length", None)] and re.fullmatch(
            r"[A-Za-z_][\w.\[\]]*", expression.operand
        ):
            return f"{expression.operand}.size"
        self.hoisted += 1
        name = f"converted_{self.hoisted}"
        assign = f"{{% assign {name} = {_liquid_filters(expression)} %}}"
        if at is None:
            at = self.blocks[-1][1] if self.blocks else len(self.out)
        self.out.insert(at, assign)
        return name

    # --- {% ... %} ---

    def block(self, token: Token) -> None:
        bits = token.split_contents()
        name, args = bits[0], bits[1:]
        if name in ("if", "for"):
            self.blocks.append((name, len(self.out)))  # where assigns for its operands go
            self.out.append(self.if_tag(args) if name == "if" else self.for_tag(args))
        elif name == "elif":
            self.expect("if", "unless")
            liquid, negated = self.condition(args)
            if negated:
                raise NotConvertible("an elif condition that Liquid can only state negated")
            self.out.append(f"{{% elsif {liquid} %}}")
        elif name == "else":
            self.expect("if", "unless")
            self.out.append("{% else %}")
        elif name == "empty":
            self.expect("for")
            self.out.append("{% else %}")
        elif name in ("endif", "endfor"):
            opened = self.expect(*(("if", "unless") if name == "endif" else ("for",)))
            self.blocks.pop()
            self.out.append(f"{{% end{opened} %}}")
        elif name == "with":
            self.out.append(self.with_tag(args))
            self.blocks.append(("with", len(self.out)))
        elif name == "endwith":
            self.expect("with")
            self.blocks.pop()
        elif name in ("spaceless", "endspaceless", "load"):
            pass  # whitespace between HTML tags; libraries: nothing to render
        elif name == "firstof":
            if "as" in args or not args:
                raise NotConvertible("firstof ... as is not supported")
            values = [_liquid_filters(_parse_expression(arg)) for arg in args]
            self.out.append("{{ " + " | default: ".join(values) + " }}")
        elif name == "templatetag" and len(args) == 1 and args[0] in _TEMPLATETAG:
            self.out.append(f"{{% raw %}}{_TEMPLATETAG[args[0]]}{{% endraw %}}")
        elif name == "verbatim":
            self.out.append("{% raw %}")
        elif name == "endverbatim":
            self.out.append("{% endraw %}")
        else:
            raise NotConvertible(f"the tag {name!r} has no Liquid equivalent here")

    def expect(self, *names: str) -> str:
        if not self.blocks or self.blocks[-1][0] not in names:
            raise NotConvertible("the blocks are not nested as expected")
        return self.blocks[-1][0]

    def if_tag(self, args: list[str]) -> str:
        liquid, negated = self.condition(args)
        if negated:
            self.blocks[-1] = ("unless", self.blocks[-1][1])
            return f"{{% unless {liquid} %}}"
        return f"{{% if {liquid} %}}"

    def for_tag(self, args: list[str]) -> str:
        reversed_ = args[-1:] == ["reversed"]
        if reversed_:
            args = args[:-1]
        if len(args) != 3 or args[1] != "in" or not re.fullmatch(r"[A-Za-z_]\w*", args[0]):
            raise NotConvertible("a for loop over several variables is not supported")
        sequence = self.plain(_parse_expression(args[2]))
        return f"{{% for {args[0]} in {sequence}{' reversed' if reversed_ else ''} %}}"

    def with_tag(self, args: list[str]) -> str:
        pairs: list[tuple[str, str]] = []
        if len(args) == 3 and args[1] == "as":
            pairs.append((args[2], args[0]))
        else:
            for arg in args:
                name, equals, value = arg.partition("=")
                if not equals or not re.fullmatch(r"[A-Za-z_]\w*", name):
                    raise NotConvertible("a with tag that cannot be read")
                pairs.append((name, value))
        if not pairs:
            raise NotConvertible("a with tag that cannot be read")
        return "".join(
            f"{{% assign {name} = {_liquid_filters(_parse_expression(value))} %}}"
            for name, value in pairs
        )

    # --- conditions ---

    def condition(self, args: list[str]) -> tuple[str, bool]:
        """The condition in Liquid, and whether it is stated negated (for ``unless``)."""
        groups = [
            [self.term(term) for term in _split(group, "and")] for group in _split(args, "or")
        ]
        positive = _join(groups, outer="or", inner="and", negate=False)
        if positive is not None:
            return positive, False
        # not (g1 or g2 ...) == (not g1) and (not g2) ..., each (not t1) or (not t2) ...
        negated = _join(groups, outer="and", inner="or", negate=True)
        if negated is not None:
            return negated, True
        raise NotConvertible("a condition that Liquid cannot state the same way")

    def term(self, words: list[str]) -> tuple[str | None, str | None]:
        """A term as (Liquid when true, Liquid when false); None where Liquid has no way."""
        negations = 0
        while words[:1] == ["not"]:
            negations, words = negations + 1, words[1:]
        positive, negative = self.comparison(words)
        return (negative, positive) if negations % 2 else (positive, negative)

    def comparison(self, words: list[str]) -> tuple[str | None, str | None]:
        if len(words) == 1:
            return self.plain(_parse_expression(words[0])), None
        if len(words) == 4 and words[1:3] in (["not", "in"], ["is", "not"]):
            words = [words[0], " ".join(words[1:3]), words[3]]
        if len(words) != 3:
            raise NotConvertible("a condition that cannot be read")
        left, op, right = (self.plain(_parse_expression(w)) if i != 1 else w
                           for i, w in enumerate(words))  # fmt: skip
        if op in _COMPARISONS:
            return f"{left} {op} {right}", f"{left} {_COMPARISONS[op]} {right}"
        if op == "is":
            return f"{left} == {right}", f"{left} != {right}"
        if op == "is not":
            return f"{left} != {right}", f"{left} == {right}"
        if op == "in":
            return f"{right} contains {left}", None
        if op == "not in":
            return None, f"{right} contains {left}"
        raise NotConvertible(f"the operator {op!r} is not supported")


def _split(words: list[str], keyword: str) -> list[list[str]]:
    parts: list[list[str]] = [[]]
    for word in words:
        if word == keyword:
            parts.append([])
        else:
            parts[-1].append(word)
    if any(not part for part in parts):
        raise NotConvertible("a condition that cannot be read")
    return parts


def _join(
    groups: list[list[tuple[str | None, str | None]]], *, outer: str, inner: str, negate: bool
) -> str | None:
    """``groups`` joined by ``outer`` of ``inner`` terms, in Liquid's right-to-left reading:
    possible when at most one group has several terms (it goes last)."""
    texts = [[term[1] if negate else term[0] for term in group] for group in groups]
    if any(text is None for group in texts for text in group):
        return None
    singles = [group for group in texts if len(group) == 1]
    several = [group for group in texts if len(group) > 1]
    if len(several) > 1:
        return None
    ordered = singles + several
    # The None check above is lost on the type checker: every text here is a str.
    return f" {outer} ".join(f" {inner} ".join(group) for group in ordered)  # type: ignore[arg-type]


def _raw(token: Token) -> str:
    if token.token_type == TokenType.VAR:
        return "{{ " + token.contents + " }}"
    if token.token_type == TokenType.BLOCK:
        return "{% " + token.contents + " %}"
    if token.token_type == TokenType.COMMENT:
        return "{# " + token.contents + " #}"
    return token.contents


def _inert(text: str) -> str:
    """Comment text that cannot open or close a Liquid tag."""
    return text.replace("{%", "{ %").replace("%}", "% }").replace("{{", "{ {").replace("}}", "} }")
