"""The canonical layout of a .scm file (`cfspec fmt`), the style of specs/cake.scm.

The formatter prints the syntax tree again and puts every comment back. Comments are not in the
tree, only in `Module.comments`, so each block (the file, a spec, a counterfactual, an edit)
hands out the comments inside its braces by offset: a comment on the line where the previous
item (or the `{`) ends trails that line; any other comment goes on its own line before the item
that follows it, or before the `}` when no item follows. A comment inside an item that is always
printed on one line (a `var`, a `do(...)`, a block's header) moves to its own line just before
that item: it is never dropped.

Files that do not parse are refused: the caller gets the syntax error and None.

The formatter proves each result before handing it out, as black does: the formatted text must
parse to the same syntax tree as the original, positions and the spelling of `->` aside, with
the same comments in the same order (equivalent), and formatting it again must change nothing
(stable). When either fails, that is a bug in cfspec: the caller gets None and an
`internal-error` diagnostic instead of a text, so no file is ever rewritten by a wrong result.
"""

from __future__ import annotations

import bisect
import dataclasses
import unicodedata
from collections.abc import Callable, Sequence

from cfspec.diagnostics.records import Diagnostic, DiagnosticBag, report_bug
from cfspec.diagnostics.source import SourceFile, Span
from cfspec.lang import ast
from cfspec.lang.parser import parse

INDENT = "  "
MAX_WIDTH = 100  # a one-line edit block longer than this is split, one item per line
EDIT_SEPARATOR = "  "  # between the items of a one-line edit block, as in specs/cake.scm
TRAILING = "  "  # before a comment at the end of a line

Node = ast.Spec | ast.SpecItem | ast.CfItem | ast.SetItem | ast.EditItem
Block = ast.Spec | ast.Counterfactual | ast.CounterfactualSet | ast.Edit
Separate = Callable[[Node, Node], bool]


def format_source(source: SourceFile) -> tuple[str | None, list[Diagnostic]]:
    """The canonical text of `source`, or None and the diagnostics when it does not parse or
    the result fails its proof (a formatter bug, see `prove`)."""
    bag = DiagnosticBag(source)
    module = parse(source, bag)
    if module is None:
        return None, bag.items
    text = _print(source, module)
    refusal = prove(source, module, text)
    return (None, [refusal]) if refusal is not None else (text, [])


def _print(source: SourceFile, module: ast.Module) -> str:
    return _Printer(source, module.comments).module(module.specs)


# --- the proof: equivalent and stable (black's assert_equivalent and assert_stable) ---------

# Fields that say where or how something was written, not what it means: spans and in-string
# offsets move with the layout, and `→` is printed `->`.
_LAYOUT_FIELDS = frozenset({"span", "offsets", "arrow"})


def meaning(node: object) -> object:
    """`node` without its layout: nested tuples of its type and meaningful field values."""
    if isinstance(node, tuple):
        return tuple(meaning(item) for item in node)
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        return (type(node).__name__, *(meaning(getattr(node, field.name))
                                       for field in dataclasses.fields(node)
                                       if field.name not in _LAYOUT_FIELDS))
    return node


def _comment_texts(module: ast.Module) -> list[str]:
    return [c.text.rstrip() for c in module.comments]  # the printer drops trailing blanks


def prove(source: SourceFile, module: ast.Module, text: str) -> Diagnostic | None:
    """None when `text` (the formatting of `module`, parsed from `source`) is equivalent to it
    and stable; else the `internal-error` that refuses it, placed on what it changed."""
    formatted = SourceFile(source.name, text)
    again = parse(formatted, DiagnosticBag(formatted))
    if again is None:
        return _refusal(source, _first_span(module), "the formatted text does not parse")
    changed = _first_change(module, again)
    if changed is not None:
        span, what = changed
        return _refusal(source, span, f"the formatted text does not mean the same: {what}")
    second = _print(formatted, again)
    if second != text:
        ours, theirs = text.splitlines(), second.splitlines()
        line = next((i for i, (x, y) in enumerate(zip(ours, theirs, strict=False)) if x != y),
                    min(len(ours), len(theirs))) + 1
        index = next((i for i, s in enumerate(again.specs) if s.span.end_line >= line), -1)
        span = module.specs[index].span if module.specs else _first_span(module)
        return _refusal(source, span, "formatting is not stable: a second pass changes line "
                        f"{line} of the result again")
    return None


def _first_span(module: ast.Module) -> Span:
    return module.specs[0].span if module.specs else Span(1, 1, 1, 1, 0, 0)


def _first_change(before: ast.Module, after: ast.Module) -> tuple[Span, str] | None:
    """Where `after` first means something else than `before`, as a span of `before`."""
    for i, spec in enumerate(before.specs):
        if i >= len(after.specs):
            return spec.span, f"spec `{spec.name.text}` is missing"
        if meaning(spec) != meaning(after.specs[i]):
            return _innermost(spec, after.specs[i]), f"spec `{spec.name.text}` changed"
    if len(after.specs) > len(before.specs):
        return _first_span(before), "a spec was added"
    ours, theirs = _comment_texts(before), _comment_texts(after)
    if ours != theirs:
        i = next((i for i, (x, y) in enumerate(zip(ours, theirs, strict=False)) if x != y),
                 min(len(ours), len(theirs)))
        where = before.comments[min(i, len(ours) - 1)].span if ours else _first_span(before)
        return where, "a comment was lost, added, changed or moved past another"
    return None


def _innermost(a: object, b: object) -> Span:
    """The span of the smallest node of `a` whose meaning differs from its place in `b`."""
    span: Span = getattr(a, "span")  # noqa: B009 - every node that differs has one
    for field in dataclasses.fields(a):  # type: ignore[arg-type]
        x, y = getattr(a, field.name), getattr(b, field.name)
        if field.name in _LAYOUT_FIELDS or meaning(x) == meaning(y):
            continue
        pairs = zip(x, y, strict=True) if isinstance(x, tuple) and isinstance(y, tuple) \
            and len(x) == len(y) else [(x, y)]
        for p, q in pairs:
            if type(p) is type(q) and hasattr(p, "span") and meaning(p) != meaning(q):
                return _innermost(p, q)
        return span
    return span


def _refusal(source: SourceFile, span: Span, why: str) -> Diagnostic:
    return report_bug(DiagnosticBag(source), span,
                      f"cfspec fmt refused to format this file: {why}", label="here",
                      left="the file is left untouched",
                      meanwhile="`cfspec lint` and `cfspec compile` still read the file as it is")


# --- leaves: items that always print on one line -------------------------------------------


def quote(value: str) -> str:
    """A string literal whose unescaped value is `value`: `"` and `\\` escaped, control
    characters escaped (a raw newline would end the string), everything else literal."""
    out = ['"']
    for ch in value:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[ch])
        elif unicodedata.category(ch) in ("Cc", "Cs"):
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _steps(steps: ast.Schedule) -> str:
    if isinstance(steps, ast.Uniform):
        return f"uniform({steps.low.raw}, {steps.high.raw})"
    if steps.end is None:
        return steps.start.raw
    return f"[{steps.start.raw}, {steps.end.raw}]"


def _value(value: ast.Value) -> str:
    return "none" if isinstance(value, ast.NoneValue) else quote(value.value)


def _assignment(assignment: ast.Assignment) -> str:
    return f"{assignment.target.text} = {_value(assignment.value)}"


def _grid_item(item: ast.GridItem) -> str:
    if isinstance(item, ast.Assignment):
        return _assignment(item)
    return f"{item.target.text} in [" + ", ".join(_value(v) for v in item.values) + "]"


def grid_lines(grid: ast.Grid, indent: str) -> list[str]:
    """A set's do(): on one line when it fits in MAX_WIDTH, else one item per line, each
    aligned under the first (lists are never broken)."""
    items = [_grid_item(i) for i in grid.items]
    line = indent + leaf(grid)
    if len(line) <= MAX_WIDTH or len(items) == 1:
        return [line]
    inner = indent + " " * len("do(")
    return [indent + "do(" + items[0] + ",",
            *(inner + item + "," for item in items[1:-1]),
            inner + items[-1] + ")"]


def _words(words: Sequence[ast.Text]) -> str:
    return " ".join(quote(w.value) for w in words)


def leaf(node: Node) -> str:
    """The one-line text of an item that is not a block."""
    if isinstance(node, ast.IdDecl):
        return f"id {quote(node.value.value)}"
    if isinstance(node, ast.PromptDecl):
        return f"prompt {quote(node.value.value)}"
    if isinstance(node, ast.ImageDecl):
        return f"image {quote(node.value.value)}"
    if isinstance(node, ast.Variable):
        kind = f": {node.kind.text}" if node.kind else ""
        description = f" {quote(node.description.value)}" if node.description else ""
        words = "none" if node.value is None else quote(node.value)
        ask = f" ask {quote(node.ask.value)}" if node.ask else ""
        return f"var {node.name.text}{kind} = {words}{description}{ask}"
    if isinstance(node, ast.Edge):
        description = f" {quote(node.description.value)}" if node.description else ""
        return f"{node.source.text} -> {node.target.text}{description}"
    if isinstance(node, ast.Do):
        return "do(" + ", ".join(_assignment(a) for a in node.assignments) + ")"
    if isinstance(node, ast.Grid):
        return "do(" + ", ".join(_grid_item(i) for i in node.items) + ")"
    if isinstance(node, ast.SetWords):
        return f"set {_assignment(node.assignment)}"
    if isinstance(node, ast.CrossReplace):
        word = f" {quote(node.word.value)}" if node.word else ""
        return f"cross_replace{word} {_steps(node.steps)}"
    if isinstance(node, ast.SelfReplace):
        return f"self_replace {_steps(node.steps)}"
    if isinstance(node, ast.Blend):
        into = f" -> {_words(node.words_1)}" if node.words_1 else ""
        return f"blend {_words(node.words_0)}{into}"
    if isinstance(node, ast.Threshold):
        return f"threshold {node.value.raw}"
    if isinstance(node, ast.BlendStart):
        return f"blend_start {node.value.raw}"
    if isinstance(node, ast.Reweight):
        return f"reweight {quote(node.word.value)} {node.weight.raw}"
    raise TypeError(f"not a one-line item: {type(node).__name__}")


# --- blank lines between items --------------------------------------------------------------


def _group(item: Node) -> str:
    if isinstance(item, (ast.IdDecl, ast.PromptDecl, ast.ImageDecl)):
        return "head"
    if isinstance(item, ast.Variable):
        return "var"
    if isinstance(item, ast.Edge):
        return "edge"
    return "counterfactual"


def _spec_separate(a: Node, b: Node) -> bool:
    """Inside a spec, a blank line between groups of different kinds and around each
    counterfactual."""
    return _group(a) != _group(b) or _group(a) == "counterfactual"


def _always(a: Node, b: Node) -> bool:
    return True


def _never(a: Node, b: Node) -> bool:
    return False


# --- the printer ----------------------------------------------------------------------------


class _Printer:
    def __init__(self, source: SourceFile, comments: Sequence[ast.Comment]) -> None:
        self.source = source
        self.text = source.text
        self.comments = sorted(comments, key=lambda c: c.span.start)
        self.starts = [c.span.start for c in self.comments]  # for bisect: big files stay fast

    def module(self, specs: Sequence[ast.Spec]) -> str:
        _, lines = self._body(specs, 0, None, len(self.text), 0, _always)
        return "".join(line + "\n" for line in lines)

    # -- comments --

    def _comments_in(self, start: int, end: int) -> list[ast.Comment]:
        return self.comments[bisect.bisect_left(self.starts, start):
                             bisect.bisect_left(self.starts, end)]

    def _blank_between(self, start: int, end: int) -> bool:
        """Whether the user left a blank line between two offsets (only whitespace lies there)."""
        return self.text.count("\n", start, end) >= 2

    def _open_brace(self, node: Block) -> int:
        """The offset of a block's `{`. Only whitespace and comments separate it from the end
        of the header's last token; a comment may itself contain `{`, so skip comments."""
        if isinstance(node, ast.Edit):
            pos = node.type.span.end if node.type else node.span.start + len("edit")
        else:
            pos = node.name.span.end
        while self.text[pos] != "{":
            if self.text[pos] == "#":
                pos = self.text.index("\n", pos)
            pos += 1
        return pos

    def _hoisted(self, node: Node) -> list[ast.Comment]:
        """The comments inside `node` that move to their own lines before it: all of them for a
        one-line item, those in the header (before `{`) for a block."""
        if isinstance(node, (ast.Spec, ast.Counterfactual, ast.CounterfactualSet, ast.Edit)):
            return self._comments_in(node.span.start, self._open_brace(node))
        return self._comments_in(node.span.start, node.span.end)

    # -- blocks --

    def _body(
        self,
        children: Sequence[Node],
        start: int,
        start_line: int | None,
        end: int,
        depth: int,
        separate: Separate,
    ) -> tuple[str | None, list[str]]:
        """The lines of a block's items (and comments) between offsets `start` and `end` (just
        inside the braces), indented `depth` levels. Also returns the comment that trails the
        `{` line, if any. `start_line` is the `{` line, None at the top of the file."""
        indent = INDENT * depth
        # The comments between the children, not inside one; those are handled with the child.
        child_starts = [c.span.start for c in children]
        loose: list[ast.Comment] = []
        for comment in self._comments_in(start, end):
            i = bisect.bisect_right(child_starts, comment.span.start) - 1
            if i < 0 or comment.span.start >= children[i].span.end:
                loose.append(comment)
        next_loose = 0
        lines: list[str] = []
        opening_comment: str | None = None
        previous: Node | None = None
        previous_end, previous_line = start, start_line
        for child in [*children, None]:
            until = child.span.start if child is not None else end
            # Each entry is (blank line before it, its lines): the comments before the child,
            # then the child.
            entries: list[tuple[bool, list[str]]] = []
            gap_start = previous_end
            while next_loose < len(loose) and loose[next_loose].span.start < until:
                comment = loose[next_loose]
                next_loose += 1
                text = comment.text.rstrip()
                if gap_start == previous_end and comment.span.line == previous_line:
                    if previous is None:
                        opening_comment = text
                    else:
                        lines[-1] += TRAILING + text
                else:
                    entries.append((self._blank_between(gap_start, comment.span.start),
                                    [indent + text]))
                gap_start = comment.span.end
            if child is not None:
                blank = self._blank_between(gap_start, child.span.start)
                for comment in self._hoisted(child):
                    entries.append((blank, [indent + comment.text.rstrip()]))
                    blank = False  # the user's blank line goes before the moved comments
                entries.append((blank, self._item(child, depth)))
            if entries:
                first_blank, first_lines = entries[0]
                if previous is None:
                    first_blank = False  # never a blank line right after `{` or at the top
                elif child is not None and separate(previous, child):
                    first_blank = True
                entries[0] = (first_blank, first_lines)
            for blank, entry_lines in entries:
                if blank:
                    lines.append("")
                lines.extend(entry_lines)
            if child is not None:
                previous, previous_end, previous_line = child, child.span.end, child.span.end_line
        return opening_comment, lines

    def _block(
        self,
        header: str,
        node: Block,
        children: Sequence[Node],
        depth: int,
        separate: Separate,
    ) -> list[str]:
        """A block printed one item per line: `header {`, the items, `}`."""
        indent = INDENT * depth
        brace = self._open_brace(node)
        brace_line = self.source.position(brace)[0]
        close = node.span.end - 1
        opening_comment, body = self._body(
            children, brace + 1, brace_line, close, depth + 1, separate
        )
        if opening_comment is None and not body:
            return [f"{indent}{header} {{}}"]
        first = f"{indent}{header} {{"
        if opening_comment is not None:
            first += TRAILING + opening_comment
        return [first, *body, indent + "}"]

    def _has_inner_comments(self, node: ast.Counterfactual | ast.CounterfactualSet | ast.Edit
                            ) -> bool:
        return bool(self._comments_in(self._open_brace(node), node.span.end))

    def _item(self, node: Node, depth: int) -> list[str]:
        indent = INDENT * depth
        if isinstance(node, ast.Spec):
            return self._block(f"scm {node.name.text}", node, node.items, depth, _spec_separate)
        if isinstance(node, ast.Counterfactual):
            header = f"counterfactual {node.name.text}"
            items = node.items
            if (len(items) == 1 and isinstance(items[0], ast.Do)
                    and not self._has_inner_comments(node)):
                return [f"{indent}{header} {{ {leaf(items[0])} }}"]
            return self._block(header, node, items, depth, _never)
        if isinstance(node, ast.CounterfactualSet):
            header = f"counterfactuals {node.name.text}"
            if (len(node.items) == 1 and isinstance(node.items[0], ast.Grid)
                    and not self._has_inner_comments(node)):
                one = grid_lines(node.items[0], f"{indent}{header} {{ ")
                if len(one) == 1 and len(one[0]) + 2 <= MAX_WIDTH:
                    return [one[0] + " }"]
            return self._block(header, node, node.items, depth, _never)
        if isinstance(node, ast.Grid):
            return grid_lines(node, indent)
        if isinstance(node, ast.Edit):
            header = "edit" + (f" {node.type.text}" if node.type else "")
            if not self._has_inner_comments(node):
                if not node.items:
                    return [f"{indent}{header} {{}}"]
                one_line = EDIT_SEPARATOR.join(leaf(item) for item in node.items)
                line = f"{indent}{header} {{ {one_line} }}"
                if len(line) <= MAX_WIDTH:
                    return [line]
            return self._block(header, node, node.items, depth, _never)
        return [indent + leaf(node)]
