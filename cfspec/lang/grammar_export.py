"""`cfspec grammar --target T`: grammar/scm.lark as each constrained-decoding backend takes it,
generated from the one file, never copied by hand.

- `lark`: the file itself (Python lark, LALR, contextual lexer).
- `llguidance`: the same Lark text with `%llguidance {"allow_initial_skip": true}` (comments and
  whitespace before the first token; Python lark rejects that header, so it is added here) and
  NAME made to exclude the keywords (`& ~/.../`, an llguidance operator).
- `gbnf` (llama.cpp) and `xgrammar` (`Grammar.from_ebnf`, the same GBNF dialect): no lexer, so
  the grammar is rewritten over characters: the ignored WS and COMMENT become explicit
  separators, each terminal's regex becomes GBNF, and NAME excludes the keywords.

Every export accepts a subset of what lark accepts, so whatever a constrained decoder emits
parses. Where they differ, the export is the stricter: a keyword is never a name (lark lets
`edit` name a variable where no keyword fits), and two word-like tokens need whitespace between
them (lark also reads `threshold0.3`). On every bundled spec and fixture they agree (tested).
cfspec reads a lone CR as a line end (lint turns CR and CRLF into LF before parsing), so where
the grammar excludes LF (in strings and comments), the exports exclude CR too.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from re import _constants as C  # type: ignore[attr-defined]
from re import _parser as sre  # type: ignore[attr-defined]
from typing import Any, cast

TARGETS = ("lark", "llguidance", "xgrammar", "gbnf")
_WORD = [(ord("0"), ord("9")), (ord("A"), ord("Z")), (ord("_"), ord("_")), (ord("a"), ord("z"))]
_START = re.compile(r"^start\s*:.*$", re.M)


class ExportError(Exception):
    """The grammar uses something a target cannot express."""


def export(target: str, *, one_spec: bool = False, text: str | None = None) -> str:
    """The grammar for `target`; `one_spec` makes exactly one spec the whole answer (the
    file's `start: spec*` would let a model answer nothing). `text`: another grammar than
    grammar/scm.lark (tests)."""
    if text is None:
        from cfspec.lang.parser import grammar_path

        text = grammar_path().read_text(encoding="utf-8")
    if target not in TARGETS:
        raise ExportError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")
    if one_spec:
        text = _one_spec(text)
    if target == "lark":
        return text
    if target == "llguidance":
        return _llguidance(text, one_spec)
    return _Gbnf(text, target).emit()


def _one_spec(text: str) -> str:
    if len(_START.findall(text)) != 1:
        raise ExportError("grammar/scm.lark has no single `start:` rule to make one spec of")
    return _START.sub("start: spec", text)


# -- llguidance ------------------------------------------------------------------------------

def _keywords(parser: object) -> list[str]:
    return sorted(t.pattern.value for t in parser.terminals  # type: ignore[attr-defined]
                  if t.pattern.type == "str" and re.fullmatch(r"[A-Za-z_]\w*", t.pattern.value))


def _llguidance(text: str, one_spec: bool = False) -> str:
    """The Lark text, its regex terminals written out as the exact regexes lark uses (from
    the same translation as GBNF: llguidance's own `common` terminals differ, e.g. its strings
    may hold a newline) and identifiers that exclude the keywords."""
    from lark import Lark

    parser = Lark(text, parser="lalr")
    keywords = _keywords(parser)
    ignore = set(parser.ignore_tokens)
    out = text
    for term in parser.terminals:
        if term.pattern.type != "re":
            continue
        line = re.compile(rf"^{term.name}\s*:.*$", re.M)
        if term.name in ignore and not line.search(out):
            continue  # %import common.WS: the same in llguidance
        regex = _gbnf_to_regex(_Regex(term.name, term.pattern.to_regexp()).translate().text)
        hit = [k for k in keywords if re.fullmatch(term.pattern.to_regexp(), k)]
        if hit:
            regex += " & ~/(" + "|".join(re.escape(k) for k in hit) + ")/"
        if len(line.findall(out)) != 1:
            raise ExportError(f"terminal {term.name} is not defined on one line")
        definition = f"{term.name}: {regex}"
        out = line.sub(lambda _m, d=definition: d, out)  # type: ignore[misc]
    if one_spec:
        # llguidance skips ignored text only before a token: after the one spec, whitespace
        # and comments need a token of their own.
        ignored = "|".join(_gbnf_to_regex(_Regex(t.name, t.pattern.to_regexp()).translate()
                                          .text)[1:-1]
                           for t in parser.terminals if t.name in ignore)
        rule = f"start: spec CFSPEC_TRAILING?\nCFSPEC_TRAILING: /(?:{ignored})+/"
        out = _START.sub(lambda _m: rule, out)
    header = "%llguidance " + json.dumps({"allow_initial_skip": True})
    return f"{header}\n{out}"


_GBNF_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|\[(?:[^\]\\]|\\.)*\]|\(|\)|\||[*+?]|\{[0-9,]+\}|\s+')


def _gbnf_to_regex(expr: str) -> str:
    """A GBNF expression of literals, classes, groups and repeats as one `/regex/`."""
    out = []
    pos = 0
    for m in _GBNF_TOKEN.finditer(expr):
        if m.start() != pos:
            raise ExportError(f"cannot write {expr!r} as a regex")
        pos = m.end()
        tok = m.group(0)
        if tok.startswith('"'):
            out.append("".join(_regex_char(c) for c in _unescape(tok[1:-1])))
        elif tok == "(":
            out.append("(?:")
        elif not tok.isspace():
            out.append(tok)
    if pos != len(expr):
        raise ExportError(f"cannot write {expr!r} as a regex")
    return "/" + "".join(out).replace("/", "\\/") + "/"


def _unescape(body: str) -> str:
    return re.sub(r"\\(x[0-9A-Fa-f]{2}|u[0-9A-Fa-f]{4}|.)", lambda m: {
        "n": "\n", "t": "\t", "r": "\r"}.get(m.group(1), chr(int(m.group(1)[1:], 16))
                                            if len(m.group(1)) > 1 else m.group(1)), body)


def _regex_char(c: str) -> str:
    if c.isalnum() and c.isascii() or c in " _":
        return c
    if c.isprintable() and not c.isascii():
        return c
    return f"\\x{ord(c):02X}" if ord(c) < 256 else f"\\u{{{ord(c):04X}}}"


# -- GBNF -----------------------------------------------------------------------------------

Ranges = list[tuple[int, int]]


@dataclass
class _Expr:
    text: str
    nullable: bool
    starts_word: bool
    ends_word: bool


def _intersects(ranges: Ranges, negated: bool, other: Ranges) -> bool:
    hit = any(lo <= b and a <= hi for lo, hi in ranges for a, b in other)
    return not _covers(ranges, other) if negated else hit


def _covers(ranges: Ranges, other: Ranges) -> bool:
    return all(any(lo <= a and b <= hi for lo, hi in ranges) for a, b in other)


def _char(c: int, in_class: bool) -> str:
    ch = chr(c)
    special = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\\": "\\\\"}
    if ch in special:
        return special[ch]
    if ch == '"':
        return '\\"'
    if in_class and ch in "[]^-":
        return f"\\x{c:02X}"
    if 0x20 <= c < 0x7F or (c >= 0xA0 and ch.isprintable()):
        return ch
    return f"\\x{c:02X}" if c < 256 else f"\\u{c:04X}"


def _class(ranges: Ranges, negated: bool) -> str:
    body = "".join(_char(a, True) if a == b else f"{_char(a, True)}-{_char(b, True)}"
                   for a, b in sorted(ranges))
    return f"[{'^' if negated else ''}{body}]"


def _literal(s: str) -> str:
    return '"' + "".join(_char(ord(c), False) for c in s) + '"'


def _merge(ranges: Ranges) -> Ranges:
    out: Ranges = []
    for a, b in sorted(ranges):
        if out and a <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _minus(ranges: Ranges, cut: set[int]) -> Ranges:
    out: Ranges = []
    for a, b in ranges:
        start = a
        for c in sorted(x for x in cut if a <= x <= b):
            if start < c:
                out.append((start, c - 1))
            start = c + 1
        if start <= b:
            out.append((start, b))
    return out


class _Regex:
    """A terminal's Python regex as GBNF, by its parse tree (re._parser)."""

    def __init__(self, name: str, pattern: str) -> None:
        self.name = name
        self.pattern = pattern

    def fail(self, what: str) -> ExportError:
        return ExportError(f"terminal {self.name}: {what} in /{self.pattern}/ has no GBNF form")

    def translate(self) -> _Expr:
        return self.seq(list(sre.parse(self.pattern)))

    def charset(self, op: object, av: object) -> tuple[Ranges, bool] | None:
        """One character's class, or None when (op, av) matches more than one character."""
        if op is C.LITERAL:
            return [(av, av)], False  # type: ignore[list-item]
        if op is C.NOT_LITERAL:
            cut = [(av, av)] + ([(13, 13)] if av == 10 else [])
            return _merge(cut), True  # type: ignore[arg-type]
        if op is C.ANY:
            return [(10, 10), (13, 13)], True
        if op is C.IN:
            ranges: Ranges = []
            negated = False
            for o, a in av:  # type: ignore[attr-defined]
                if o is C.NEGATE:
                    negated = True
                elif o is C.LITERAL:
                    ranges.append((a, a))
                elif o is C.RANGE:
                    ranges.append(a)
                elif o is C.CATEGORY and a is C.CATEGORY_DIGIT:
                    ranges.append((48, 57))
                else:
                    raise self.fail(f"class item {o}")
            if negated and (10, 10) in ranges:
                ranges.append((13, 13))  # a lone CR ends a line for cfspec (see above)
            return _merge(ranges), negated
        if op is C.SUBPATTERN and len(av[3]) == 1:  # type: ignore[index]
            return self.charset(*av[3][0])  # type: ignore[index]
        if op is C.BRANCH:
            parts = [list(p) for p in av[1]]  # type: ignore[index]
            if all(len(p) == 1 for p in parts):
                sets = [self.charset(*p[0]) for p in parts]
                if all(s is not None and not s[1] for s in sets):
                    return _merge([r for s in sets for r in s[0]]), False  # type: ignore[index]
        return None

    def seq(self, items: list[tuple[object, object]]) -> _Expr:
        parts: list[_Expr] = []
        i = 0
        while i < len(items):
            if self._escaped_tail(items[i:]):
                quote = items[i + 3][1]
                inner = (f"({_class([(quote, quote), (92, 92), (10, 10), (13, 13)], True)} | "  # type: ignore[list-item]
                         f'"\\\\" {_class([(10, 10), (13, 13)], True)})*')
                parts.append(_Expr(inner, True, True, True))
                i += 3
                continue
            parts.append(self.item(*items[i]))
            i += 1
        return _concat(parts)

    @staticmethod
    def _escaped_tail(items: list[tuple[object, object]]) -> bool:
        """`.*?(?<!\\)(\\\\)*?"`: lark's ESCAPED_STRING body, up to the first unescaped quote."""
        if len(items) < 4:
            return False
        (o1, a1), (o2, a2), (o3, a3), (o4, _) = items[:4]
        return (o1 is C.MIN_REPEAT and a1[:2] == (0, C.MAXREPEAT)  # type: ignore[index]
                and list(a1[2]) == [(C.ANY, None)]  # type: ignore[index]
                and o2 is C.ASSERT_NOT and a2[0] == -1  # type: ignore[index]
                and list(a2[1]) == [(C.LITERAL, 92)]  # type: ignore[index]
                and o3 is C.MIN_REPEAT and a3[:2] == (0, C.MAXREPEAT)  # type: ignore[index]
                and o4 is C.LITERAL)

    def item(self, op: object, av: object) -> _Expr:
        one = self.charset(op, av)
        if one is not None:
            ranges, negated = one
            word = _intersects(ranges, negated, _WORD)
            if not negated and len(ranges) == 1 and ranges[0][0] == ranges[0][1]:
                return _Expr(_literal(chr(ranges[0][0])), False, word, word)
            return _Expr(_class(ranges, negated), False, word, word)
        if op is C.SUBPATTERN:
            return self.group(self.seq(list(av[3])))  # type: ignore[index]
        if op is C.BRANCH:
            alts = [self.seq(list(p)) for p in av[1]]  # type: ignore[index]
            return _Expr("(" + " | ".join(a.text for a in alts) + ")",
                         any(a.nullable for a in alts), any(a.starts_word for a in alts),
                         any(a.ends_word for a in alts))
        if op is C.MAX_REPEAT:
            lo, hi, sub = cast(tuple[int, int, Any], av)
            inner = self.group(self.seq(list(sub)))
            body = inner.text[1:-1] if inner.text.startswith("(") else inner.text
            if (lo, hi) == (0, 1) and body.endswith("+") and _balanced_atom(body[:-1]):
                # (x+)? is x*: some GBNF readers (llguidance's) drop the parentheses
                return _Expr(body[:-1] + "*", True, inner.starts_word, inner.ends_word)
            suffix = {(0, C.MAXREPEAT): "*", (1, C.MAXREPEAT): "+", (0, 1): "?"}.get((lo, hi))
            if suffix is None:
                suffix = f"{{{lo},{'' if hi is C.MAXREPEAT else hi}}}"
            return _Expr(inner.text + suffix, lo == 0 or inner.nullable, inner.starts_word,
                         inner.ends_word)
        raise self.fail(f"`{op}`")

    @staticmethod
    def group(e: _Expr) -> _Expr:
        if re.fullmatch(r'"(?:[^"\\]|\\.)*"|\[(?:[^\]\\]|\\.)*\]|\((?:.*)\)', e.text) and \
                _balanced(e.text):
            return e
        return _Expr(f"({e.text})", e.nullable, e.starts_word, e.ends_word)


def _balanced_atom(text: str) -> bool:
    return bool(re.fullmatch(r'"(?:[^"\\]|\\.)*"|\[(?:[^\]\\]|\\.)*\]|[a-z0-9-]+', text)) or (
        text.startswith("(") and text.endswith(")") and _balanced(text))


def _balanced(text: str) -> bool:
    """True when `text` is one parenthesised group, not `(a) (b)`."""
    if not text.startswith("("):
        return True
    depth, quoted, cls, esc = 0, False, False, False
    for i, ch in enumerate(text):
        if esc:
            esc = False
        elif ch == "\\":
            esc = True
        elif quoted:
            quoted = ch != '"'
        elif cls:
            cls = ch != "]"
        elif ch == '"':
            quoted = True
        elif ch == "[":
            cls = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0 and i != len(text) - 1:
                return False
    return True


def _concat(parts: list[_Expr]) -> _Expr:
    starts = ends = False
    for p in parts:
        starts = starts or p.starts_word
        if not p.nullable:
            break
    for p in reversed(parts):
        ends = ends or p.ends_word
        if not p.nullable:
            break
    return _Expr(" ".join(p.text for p in parts), all(p.nullable for p in parts), starts, ends)


def _gname(name: str) -> str:
    """A GBNF rule name: llama.cpp allows letters, digits and `-`; some readers not digits."""
    name = re.sub(r"_(star|plus)_\d+$", r"_\1", name.strip("_"))
    return re.sub(r"_+", "-", name).lower() or "x"


Key = tuple[str, str, str]  # a lark rule, the state before it, the state after it
Sym = str | Key  # GBNF text, or a reference to a state-split rule


class _Gbnf:
    """The CFG over characters. Lark's lexer takes the longest match, so `varW` is one NAME:
    every rule is split by whether the text before it ends in a word character (`w`) or not
    (`n`), and a token that starts with one after a `w` needs a separator (`ws1`)."""

    def __init__(self, text: str, target: str) -> None:
        from lark import Lark

        self.target = target
        self.parser = Lark(text, parser="lalr")
        self.terms: dict[str, _Expr] = {}
        self.lines: list[str] = []
        ignore = set(self.parser.ignore_tokens)
        self._check_ignored(ignore)
        keywords = _keywords(self.parser)
        for t in self.parser.terminals:
            if t.name in ignore:
                continue
            if t.pattern.type == "str":
                v = t.pattern.value
                w = bool(re.match(r"\w", v[0], re.A)), bool(re.match(r"\w", v[-1], re.A))
                self.terms[t.name] = _Expr(_literal(v), False, *w)
            else:
                hit = [k for k in keywords if re.fullmatch(t.pattern.to_regexp(), k)]
                self.terms[t.name] = self._regex_term(t.name, t.pattern.to_regexp(), hit)

    def _check_ignored(self, ignore: set[str]) -> None:
        """The separators are written out by hand below (`ws`, `comment`): make sure they are
        what the grammar ignores, whitespace and `#` comments, and nothing else."""
        patterns = {t.name: t.pattern.to_regexp() for t in self.parser.terminals}
        for name in ignore:
            p = patterns[name]
            space = re.fullmatch(p, " \t\r\n\x0c") and not re.fullmatch(p, " \u00a0")
            comment = re.fullmatch(p, "# x") and not re.fullmatch(p, "# x\ny") \
                and not re.fullmatch(p, "x")
            if not (space or comment):
                raise ExportError(f"%ignore {name}: only whitespace [ \\t\\n\\r\\f] and # "
                                  "comments can be written out as GBNF")

    def _regex_term(self, name: str, pattern: str, keywords: list[str]) -> _Expr:
        conv = _Regex(name, pattern)
        expr = conv.translate()
        if not keywords:
            return expr
        items = list(sre.parse(pattern))
        shape = None
        if len(items) == 2 and items[1][0] is C.MAX_REPEAT and items[1][1][:2] == (0, C.MAXREPEAT):
            first = conv.charset(*items[0])
            rest_items = list(items[1][1][2])
            rest = conv.charset(*rest_items[0]) if len(rest_items) == 1 else None
            if first and rest and not first[1] and not rest[1]:
                shape = first[0], rest[0]
        if shape is None:
            raise ExportError(f"terminal {name} matches keywords ({', '.join(keywords)}) and "
                              "is not an identifier [first][rest]*")
        return _Expr(self._identifier_rules(name, shape[0], shape[1], keywords), False, True,
                     True)

    def _identifier_rules(self, name: str, first: Ranges, rest: Ranges,
                          keywords: list[str]) -> str:
        """[first][rest]* less the keywords, as a trie of rules (GBNF has no negation): rule
        `name-after-bl` is what may follow `bl` in a name."""
        base = _gname(name)
        prefixes = sorted({k[:i] for k in keywords for i in range(1, len(k) + 1)})
        ids = {p: f"{base}-after-{p.replace('_', '-')}" for p in prefixes}
        ids[""] = f"{base}-not-keyword"
        tail = _class(rest, False) + "*"
        for p in [""] + prefixes:
            children = sorted({k[len(p)] for k in keywords if k.startswith(p) and len(k) > len(p)})
            alts = [f"{_literal(c)} {ids[p + c]}" for c in children]
            other = _minus(first if p == "" else rest, {ord(c) for c in children})
            if other:
                alts.append(f"{_class(other, False)} {tail}")
            body = " | ".join(alts)
            if p and p not in keywords:
                body = f"({body})?"
            self.lines.append(f"{ids[p]} ::= {body}")
        return ids[""]

    def emit(self) -> str:
        rules: dict[str, list[list[str]]] = {}
        for r in self.parser.rules:
            rules.setdefault(r.origin.name, []).append([s.name for s in r.expansion])
        outs = self._outs(rules)
        emitted: dict[Key, list[list[Sym]]] = {}
        todo = [("start", "n")]
        seen = set(todo)
        while todo:
            name, state = todo.pop()
            for expansion in rules[name]:
                for end, items in self._paths(expansion, state, outs):
                    emitted.setdefault((name, state, end), []).append(items)
                    for sym in items:
                        if isinstance(sym, tuple) and sym[:2] not in seen:
                            seen.add(sym[:2])
                            todo.append(sym[:2])
        emitted = _no_left_recursion(emitted)
        names = _names(emitted)
        lines = [f"# cfspec grammar --target {self.target}: generated from grammar/scm.lark by",
                 "# `cfspec grammar`; do not edit. The root rule is `root`. Rule names end in",
                 "# the word state before and after them (n: not a word character, w: one).",
                 "root ::= (" + " | ".join(names[k] for k in emitted if k[:2] == ("start", "n"))
                 + ") trailing"]
        for key in sorted(emitted, key=lambda k: (k[0] != "start", k[0].startswith("_"), k)):
            alts = emitted[key]
            body = [" ".join(names[s] if isinstance(s, tuple) else s for s in a) for a in alts
                    if a]
            text = " | ".join(body) if body else '""'
            if body and len(body) < len(alts):
                text = f"({text})?"
            lines.append(f"{names[key]} ::= {text}")
        for tname, expr in sorted(self.terms.items()):
            lines.append(f"{_gname(tname)}-t ::= {expr.text}")
        lines += self.lines
        lines += [
            "# lark's %ignore: whitespace, and # comments to the end of the line",
            r"ws ::= ([ \t\n\r\x0C] | comment)*",
            r"ws-one ::= ([ \t\n\r\x0C] | comment)+",
            r'comment ::= "#" [^\n\r]* [\n\r]',
            r'trailing ::= ws ("#" [^\n\r]*)?',
        ]
        return "\n".join(lines) + "\n"

    def _outs(self, rules: dict[str, list[list[str]]]) -> dict[tuple[str, str], set[str]]:
        """The states each rule can end in, from each state it can start in (a fixpoint)."""
        outs: dict[tuple[str, str], set[str]] = {(n, s): set() for n in rules for s in "nw"}
        changed = True
        while changed:
            changed = False
            for name, expansions in rules.items():
                for state in "nw":
                    for expansion in expansions:
                        states = {state}
                        for sym in expansion:
                            if sym in self.terms:
                                states = {"w" if self.terms[sym].ends_word else "n"} if states \
                                    else set()
                            else:
                                states = set().union(*(outs[sym, s] for s in states))
                        if not states <= outs[name, state]:
                            outs[name, state] |= states
                            changed = True
        return outs

    def _paths(self, expansion: list[str], state: str,
               outs: dict[tuple[str, str], set[str]]) -> list[tuple[str, list[Sym]]]:
        paths: list[tuple[str, list[Sym]]] = [(state, [])]
        for sym in expansion:
            nxt: list[tuple[str, list[Sym]]] = []
            for s, items in paths:
                if sym in self.terms:
                    t = self.terms[sym]
                    sep = "ws-one" if s == "w" and t.starts_word else "ws"
                    nxt.append(("w" if t.ends_word else "n", items + [f"{sep} {_gname(sym)}-t"]))
                else:
                    nxt += [(o, items + [(sym, s, o)]) for o in sorted(outs[sym, s])]
            paths = nxt
        return paths


def _starts_with(alt: list[Sym], name: str, state: str) -> bool:
    """Whether `alt` begins with rule `name` entered in word state `state` (left recursion)."""
    first = alt[0] if alt else None
    return isinstance(first, tuple) and first[:2] == (name, state)


def _no_left_recursion(rules: dict[Key, list[list[Sym]]]) -> dict[Key, list[list[Sym]]]:
    """llama.cpp refuses left recursion, and lark writes `x*` as `xs: x | xs x`. For a rule
    family A(i, o): its alternatives either start with A(i, m) and go on with a tail from m to
    o, or are a base from i to m. So A(i, o) = base(i, m) more(m, o), where more(m, o) is
    empty when m == o, or a tail from m to m' followed by more(m', o)."""
    tails: dict[tuple[str, str], list[tuple[str, list[Sym]]]] = {}  # (A, m) -> [(o, tail)]
    for (name, i, o), alts in rules.items():
        for alt in alts:
            if _starts_with(alt, name, i):  # A(i, o) = A(i, m) tail
                tails.setdefault((name, cast(Key, alt[0])[2]), []).append((o, alt[1:]))
    recursive = {name for name, _ in tails}
    out = {key: alts for key, alts in rules.items() if key[0] not in recursive}
    for name, i, o in [k for k in rules if k[0] in recursive]:
        # Every base of A(i, m), for any m, followed by more(m, o).
        out[name, i, o] = [alt + [(f"{name}\0more", m, o)]
                           for (other, j, m), alts in rules.items() if (other, j) == (name, i)
                           for alt in alts if not _starts_with(alt, name, i)]
    _add_more_rules(out, tails)
    for key, alts in out.items():
        if any(_starts_with(alt, *key[:2]) for alt in alts):
            raise ExportError(f"rule {key[0]} is still left-recursive")
    return out


def _add_more_rules(out: dict[Key, list[list[Sym]]],
                    tails: dict[tuple[str, str], list[tuple[str, list[Sym]]]]) -> None:
    """more(m, o) for every state pair the rules in `out` reach, added to `out`."""
    todo = [k for alts in out.values() for a in alts for k in a
            if isinstance(k, tuple) and k[0].endswith("\0more")]
    while todo:
        key = todo.pop()
        if key in out:
            continue
        name, m, o = key
        base = name[:-len("\0more")]
        alts: list[list[Sym]] = [] if m != o else [[]]
        for end, tail in tails.get((base, m), []):
            nxt = (name, end, o)
            alts.append(list(tail) + [nxt])
            todo.append(nxt)
        out[key] = alts


def _names(rules: dict[Key, list[list[Sym]]]) -> dict[Key, str]:
    names: dict[Key, str] = {}
    for name, i, o in rules:
        base, more = (name[:-5], "-more") if name.endswith("\0more") else (name, "")
        names[name, i, o] = f"{_gname(base)}{more}-{i}{o}"
    if len(set(names.values())) != len(names):
        raise ExportError("two grammar rules map to one GBNF name")
    return names
