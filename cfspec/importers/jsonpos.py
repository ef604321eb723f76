"""A small JSON parser that keeps positions.

`json.loads` gives values without offsets, and every diagnostic of an imported answer must point
into the LLM's own text: at the edge string inside `"SCM": [...]`, at the word inside a prompt.
So this parser returns nodes that know where they came from, and strings that know where each
of their characters came from (escapes such as `\\u2192` move them).

It accepts one value, several values one after another (JSON Lines), and reports the first
error of each value with its offset; after an error it resumes at the next line that starts a
new top-level value, so one bad line of a JSON Lines file does not lose the others.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MAX_DEPTH = 200  # deeper nesting is no LLM answer; refusing it keeps the recursion bounded


@dataclass(frozen=True, slots=True)
class JStr:
    value: str
    start: int  # offset of the opening quote
    end: int  # offset just past the closing quote
    offsets: tuple[int, ...] | None = None  # offset of value[i]; None: no escapes

    def at(self, i: int) -> int:
        """The source offset of `value[i]`; `i == len(value)` is the closing quote, so
        `at(j)` is also where `value[:j]` ends in the source."""
        if self.offsets is None:
            return self.start + 1 + min(max(i, 0), len(self.value))
        if 0 <= i < len(self.offsets):
            return self.offsets[i]
        return self.end - 1 if i >= len(self.value) else self.start + 1


@dataclass(frozen=True, slots=True)
class JScalar:
    value: float | int | bool | None
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class JArr:
    items: tuple[JValue, ...]
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class JObj:
    members: tuple[tuple[JStr, JValue], ...]
    start: int
    end: int

    def get(self, *keys: str) -> tuple[JStr, JValue] | None:
        """The member under the first of `keys` present. Keys compare by `key_form`: case,
        `-`, `_` and spaces aside (`coco-counterfactual-index` is `coco_counterfactual_index`)."""
        by_key: dict[str, tuple[JStr, JValue]] = {}
        for k, v in self.members:
            by_key.setdefault(key_form(k.value), (k, v))
        for key in keys:
            found = by_key.get(key_form(key))
            if found is not None:
                return found
        return None

    def keys(self) -> list[str]:
        return [key_form(k.value) for k, _ in self.members]


def key_form(key: str) -> str:
    """How keys are compared: lower case, without `-`, `_`, spaces."""
    return _KEY_NOISE.sub("", key).lower()


JValue = JStr | JScalar | JArr | JObj


def kind(value: JValue) -> str:
    """How a value is named in messages."""
    if isinstance(value, JStr):
        return "a string"
    if isinstance(value, JArr):
        return "a list"
    if isinstance(value, JObj):
        return "an object"
    if value.value is None:
        return "null"
    if isinstance(value.value, bool):
        return "a boolean"
    return "a number"


@dataclass(frozen=True, slots=True)
class JsonError:
    message: str
    start: int
    end: int
    help: str | None = None
    notes: tuple[str, ...] = ()


@dataclass
class Parsed:
    values: list[JValue] = field(default_factory=list)
    errors: list[JsonError] = field(default_factory=list)


class _Fail(Exception):
    def __init__(self, error: JsonError) -> None:
        super().__init__(error.message)
        self.error = error


_KEY_NOISE = re.compile(r"[\s_-]+")
_HEX4 = re.compile(r"[0-9A-Fa-f]{4}")
_LOW_SURROGATE = re.compile(r"\\u[dD][c-fC-F][0-9A-Fa-f]{2}")
_WS = re.compile(r"[ \t\r\n]*")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_PLAIN = re.compile(r'[^"\\\x00-\x1f]*')
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_WORD = re.compile(r"[A-Za-z_]+")
_NEXT_VALUE = re.compile(r"^[{\[]", re.M)
_LINE = re.compile(r"[^\n]*\n?")


def json_lines(text: str, start: int, stop: int) -> bool:
    """Whether `text[start:stop]` is JSON Lines: several lines, each opening its own value at
    its first column. Such a file is parsed line by line, so a truncated line stays one error
    and the lines after it still import."""
    lines = [ln for ln in text[start:stop].split("\n") if ln.strip()]
    return len(lines) > 1 and all(ln[:1] in ("{", "[") for ln in lines)


def parse(text: str, start: int = 0, end: int | None = None, *, tail_ok: bool = False) -> Parsed:
    """Every top-level value in `text[start:end]`. With `tail_ok`, text after the first value
    (prose around an embedded answer) is ignored instead of reported."""
    stop = len(text) if end is None else end
    out = Parsed()
    p = _Parser(text, stop)
    pos = p.skip(start)
    if pos >= stop:
        out.errors.append(JsonError("expected a JSON value, found the end of the input",
                                    stop, stop, help="the answer is empty"))
        return out
    while pos < stop:
        try:
            value, pos = p.value(pos, 0, [])
            out.values.append(value)
            if tail_ok:
                break
        except _Fail as failure:
            out.errors.append(failure.error)
            resume = _NEXT_VALUE.search(text, failure.error.start + 1, stop)
            if resume is None or tail_ok:
                break
            pos = resume.start()
            continue
        pos = p.skip(pos)
        if pos < stop and text[pos] == ",":  # `{...},{...}` without brackets: say so once
            out.errors.append(JsonError(
                "a comma between top-level values", pos, pos + 1,
                help="wrap the answers in [ ... ], or write one per line (JSON Lines)"))
            pos = p.skip(pos + 1)
    return out


def parse_lines(text: str, start: int, stop: int) -> list[Parsed]:
    """JSON Lines: each non-blank line parsed on its own."""
    return [parse(text, m.start(), m.end() - len(m.group()) + len(m.group().rstrip("\r\n")))
            for m in _LINE.finditer(text, start, stop) if m.group().strip()]


class _Parser:
    def __init__(self, text: str, stop: int) -> None:
        self.text = text
        self.stop = stop

    def skip(self, pos: int) -> int:
        m = _WS.match(self.text, pos, self.stop)
        return m.end() if m else pos

    def fail(self, message: str, start: int, end: int | None = None, *, help: str | None = None,
             notes: tuple[str, ...] = ()) -> _Fail:
        end = min(self.stop, start + 1) if end is None else end
        return _Fail(JsonError(message, start, max(start, end), help, notes))

    def found(self, pos: int) -> str:
        if pos >= self.stop:
            return "the end of the input"
        m = _WORD.match(self.text, pos, self.stop)
        token = m.group() if m else self.text[pos]
        return f"`{token}`" if token.isprintable() else f"character U+{ord(token[0]):04X}"

    def truncated(self, open_stack: list[tuple[str, int]]) -> _Fail:
        notes = tuple(
            f"the {'object' if c == '{' else 'list'} opened at offset {o} is not closed"
            for c, o in reversed(open_stack[-3:])
        )
        return self.fail("unexpected end of input: the JSON is truncated", self.stop, self.stop,
                         help="the answer was cut off; ask for it again or close it by hand",
                         notes=notes)

    def value(self, pos: int, depth: int, stack: list[tuple[str, int]]) -> tuple[JValue, int]:
        pos = self.skip(pos)
        if pos >= self.stop:
            raise self.truncated(stack)
        ch = self.text[pos]
        if ch == "{":
            return self.obj(pos, depth + 1, stack)
        if ch == "[":
            return self.arr(pos, depth + 1, stack)
        if ch == '"':
            return self.string(pos, stack)
        m = _NUMBER.match(self.text, pos, self.stop)
        if m:
            raw = m.group()
            number: float | int = float(raw) if any(c in raw for c in ".eE") else int(raw)
            return JScalar(number, pos, m.end()), m.end()
        for word, literal in (("true", True), ("false", False), ("null", None)):
            if self.text.startswith(word, pos) and pos + len(word) <= self.stop:
                return JScalar(literal, pos, pos + len(word)), pos + len(word)
        if ch == "'":
            raise self.fail("single-quoted strings are not JSON", pos,
                            help='use double quotes: "..."')
        bare = _WORD.match(self.text, pos, self.stop)
        if bare and bare.group() in ("True", "False", "None", "NaN", "Infinity", "undefined"):
            raise self.fail(f"`{bare.group()}` is not a JSON value", pos, bare.end(),
                            help="JSON writes true, false and null")
        raise self.fail(f"expected a JSON value, found {self.found(pos)}", pos)

    def obj(self, start: int, depth: int, stack: list[tuple[str, int]]) -> tuple[JObj, int]:
        if depth > MAX_DEPTH:
            raise self.fail(f"nested deeper than {MAX_DEPTH} levels", start)
        stack = [*stack, ("{", start)]
        members: list[tuple[JStr, JValue]] = []
        pos = self.skip(start + 1)
        if pos < self.stop and self.text[pos] == "}":
            return JObj((), start, pos + 1), pos + 1
        while True:
            if pos >= self.stop:
                raise self.truncated(stack)
            if self.text[pos] != '"':
                if self.text[pos] == "}" and members:
                    raise self.fail("trailing comma before `}`", pos,
                                    help="remove the comma after the last member")
                help = "keys are double-quoted strings" if self.text[pos] != "'" else \
                    'use double quotes: "key"'
                raise self.fail(f"expected a quoted key, found {self.found(pos)}", pos, help=help)
            key, pos = self.string(pos, stack)
            pos = self.skip(pos)
            if pos >= self.stop:
                raise self.truncated(stack)
            if self.text[pos] != ":":
                raise self.fail(f"expected `:` after the key {key.value!r}, found "
                                f"{self.found(pos)}", pos)
            value, pos = self.value(pos + 1, depth, stack)
            members.append((key, value))
            pos = self.skip(pos)
            if pos >= self.stop:
                raise self.truncated(stack)
            if self.text[pos] == ",":
                pos = self.skip(pos + 1)
                continue
            if self.text[pos] == "}":
                return JObj(tuple(members), start, pos + 1), pos + 1
            raise self.fail(f"expected `,` or `}}` after the value of {key.value!r}, found "
                            f"{self.found(pos)}", pos,
                            help="a missing comma between members?" if self.text[pos] == '"'
                            else None)

    def arr(self, start: int, depth: int, stack: list[tuple[str, int]]) -> tuple[JArr, int]:
        if depth > MAX_DEPTH:
            raise self.fail(f"nested deeper than {MAX_DEPTH} levels", start)
        stack = [*stack, ("[", start)]
        items: list[JValue] = []
        pos = self.skip(start + 1)
        if pos < self.stop and self.text[pos] == "]":
            return JArr((), start, pos + 1), pos + 1
        while True:
            if pos < self.stop and self.text[pos] == "]" and items:
                raise self.fail("trailing comma before `]`", pos,
                                help="remove the comma after the last item")
            value, pos = self.value(pos, depth, stack)
            items.append(value)
            pos = self.skip(pos)
            if pos >= self.stop:
                raise self.truncated(stack)
            if self.text[pos] == ",":
                pos = self.skip(pos + 1)
                continue
            if self.text[pos] == "]":
                return JArr(tuple(items), start, pos + 1), pos + 1
            raise self.fail(f"expected `,` or `]` after a list item, found {self.found(pos)}",
                            pos, help="a missing comma between items?"
                            if self.text[pos] == '"' else None)

    def string(self, start: int, stack: list[tuple[str, int]]) -> tuple[JStr, int]:
        text, stop = self.text, self.stop
        chars: list[str] = []
        offsets: list[int] = []
        escaped = False
        pos = start + 1
        while True:
            m = _PLAIN.match(text, pos, stop)
            assert m is not None  # `*` always matches
            run = m.group()
            chars.append(run)
            offsets.extend(range(pos, m.end()))
            pos = m.end()
            if pos >= stop:
                raise self.fail("unterminated string: the JSON is truncated", start, stop,
                                help="close the string with `\"`")
            ch = text[pos]
            if ch == '"':
                value = "".join(chars)
                return JStr(value, start, pos + 1, tuple(offsets) if escaped else None), pos + 1
            if ch != "\\":
                what = "a raw line break" if ch in "\r\n" else f"control character U+{ord(ch):04X}"
                raise self.fail(f"{what} inside a string", pos,
                                help="write it escaped (\\n), or close the string first")
            escaped = True
            if pos + 1 >= stop:
                raise self.fail("unterminated string: the JSON is truncated", start, stop)
            esc = text[pos + 1]
            if esc in _ESCAPES:
                chars.append(_ESCAPES[esc])
                offsets.append(pos)
                pos += 2
                continue
            if esc != "u":
                raise self.fail(f"invalid escape `\\{esc}`", pos, pos + 2,
                                help="JSON escapes are \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX")
            code, width = self.unicode_escape(pos)
            chars.append(code)
            offsets.append(pos)
            pos += width

    def unicode_escape(self, pos: int) -> tuple[str, int]:
        hex4 = self.text[pos + 2 : pos + 6]
        if len(hex4) < 4 or pos + 6 > self.stop or not _HEX4.fullmatch(hex4):
            raise self.fail("invalid \\u escape: four hex digits expected", pos,
                            min(self.stop, pos + 6))
        code = int(hex4, 16)
        if 0xD800 <= code < 0xDC00:
            low = self.text[pos + 6 : pos + 12]
            if _LOW_SURROGATE.fullmatch(low) and pos + 12 <= self.stop:
                combined = 0x10000 + ((code - 0xD800) << 10) + (int(low[2:], 16) - 0xDC00)
                return chr(combined), 12
            return "\ufffd", 6  # a lone surrogate cannot be written out; keep a visible mark
        if 0xDC00 <= code < 0xE000:
            return "\ufffd", 6
        return chr(code), 6
