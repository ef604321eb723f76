"""The writing pass: the judged answer as a .scm (`writer.Draft` -> text), linted as any spec
would be; what only the linter finds is traced back to the input and added to the diagnostics,
so an import never reports less than `cfspec lint` would on the file it wrote. `write_pair`
writes a single pair; a caption set builds its own draft (`cfspec.importers.sets`) and shares
`write_spec`, `article_filter` and `edit_type`."""

from __future__ import annotations

import re
import textwrap
from collections import Counter
from collections.abc import Callable, Mapping, Sequence

from cfspec.diagnostics.codes import Severity
from cfspec.diagnostics.records import Diagnostic
from cfspec.importers import binding, changes, writer
from cfspec.importers.answer import ImportedItem, Piece, answer_photo
from cfspec.importers.names import Names, cname, head_word
from cfspec.importers.passes.binding import Binding, guess
from cfspec.importers.passes.context import Judging, point
from cfspec.importers.passes.graph import Graphs
from cfspec.importers.passes.intervention import Intervention
from cfspec.importers.passes.minimality import Minimality
from cfspec.lang.prompt import article_for, parse_template, render, says_the_same
from cfspec.lang.words import split_words

# Diagnostics of one code written in full in a spec's header; the rest are counted (a 16,000-edge
# answer has 16,000 unplaced variables: their header was most of the file and of import's time).
HEADER_EACH = 5
_ARTICLE = re.compile(r"(a|an|A|An|AN) (\S.*)$", re.S)


def write_pair(j: Judging, g: Graphs, b: Binding, iv: Intervention, m: Minimality
               ) -> ImportedItem:
    a, p0 = j.answer, j.p0
    names = Names()
    for d in g.declared:
        names(d.name)
    fix_ws: Callable[[str], str] = _collapse if j.options.fix else (lambda s: s)
    values = dict(iv.values)  # `_template` takes the article off values it writes with `| a`
    template, words = _template(p0, iv.slots, values, names, fix_ws) if p0 is not None \
        else (None, {})
    draft = writer.Draft(
        name=cname(a.item_id, "pair" if a.shape == "coco-cf" else "answer"),
        item_id=a.item_id, origin=point(a.span), id_origin=point(a.span),
        prompt_origin=p0.span(j.source) if p0 is not None else point(a.span),
        template=template, photo=answer_photo(a, j.options),
    )
    _variables(j, g, b, words, names, draft)
    for e in g.edges:
        draft.edges.append(writer.DraftEdge(names(e.source), names(e.target),
                                            e.description, e.span))
    item = ImportedItem(a.source, a.shape, a.item_id, a.span, None, [])
    if p0 is not None and j.p1 is not None and iv.plan is not None:
        _counterfactual(j, iv, m, j.p1, template, words, values, names, fix_ws, draft, item)
    reported = {d.code.name for d in j.bag.items} | a.silent
    if j.p1 is not None:  # without an original prompt there is no counterfactual to write
        reported.add("no-counterfactuals")
    # A variable in an edge with an undeclared one is in no edge of the written file;
    # undefined-variable already says why.
    in_edges = {d.span for d in g.declared if d.name in g.index}
    return write_spec(j, draft, item, lambda d: d.code.name not in reported and not (
        d.code.name == "unused-variable" and d.span in in_edges))


def _template(p0: Piece, slots: Mapping[str, tuple[int, int]], values: dict[str, str | None],
              names: Names, fix_ws: Callable[[str], str]
              ) -> tuple[str, dict[str, str | None]]:
    """The factual prompt with each bound variable's words as `{{ Name }}`, and those words
    (None: a variable placed where its words would go, the caption does not show it)."""
    t0 = binding.tokens(p0.text)
    words: dict[str, str | None] = {}
    pieces, pos = [], 0
    for n, (i, k) in sorted(slots.items(), key=lambda kv: kv[1]):
        if i == k:  # not in the factual caption: placed where its words go
            cut, slot = changes.absent_slot(t0, i, "{{ " + names(n) + " }}")
            pieces += [p0.text[pos:cut], slot]
            pos = cut
            words[n] = None
            continue
        start, end = t0[i].start, t0[k - 1].end
        filters = article_filter(p0.text[start:end], values, n)
        if filters:
            start = t0[i + 1].start
        pieces += [p0.text[pos:t0[i].start], "{{ " + names(n) + filters + " }}"]
        words[n] = fix_ws(p0.text[start:end])
        pos = end
    pieces.append(p0.text[pos:])
    return fix_ws("".join(pieces)), words


def _variables(j: Judging, g: Graphs, b: Binding, words: Mapping[str, str | None],
               names: Names, draft: writer.Draft) -> None:
    guessed = dict(b.guessed)
    for d in g.declared:
        bound = d.name in words
        if not bound and d.name not in guessed:
            guessed[d.name] = guess(d, g.index)
        said = words[d.name] if bound else guessed[d.name]
        description = d.description
        if d.label and d.label.strip().lower() != (said or "").lower():
            description = f"{d.label}: {description}" if description else d.label
        draft.variables.append(writer.DraftVar(
            names(d.name), said, latent=not bound and j.p0 is not None,
            description=description, origin=d.span))


def _counterfactual(j: Judging, iv: Intervention, m: Minimality, p1: Piece,
                    template: str | None, words: Mapping[str, str | None],
                    values: Mapping[str, str | None], names: Names,
                    fix_ws: Callable[[str], str], draft: writer.Draft, item: ImportedItem
                    ) -> None:
    assert iv.plan is not None
    fixed = {n: (fix_ws(v) if v is not None else None) for n, v in values.items()}
    cf = writer.DraftCounterfactual(_cf_name(m.do_targets, values, iv, words), p1.span(j.source))
    cf.do = [(names(n), fixed[n]) for n in m.do_targets]
    cf.do_comment = j.answer.do_comment
    cf.sets = [(names(n), fixed[n]) for n in m.set_targets]
    rendered = None
    if template is not None:
        frame, errors = parse_template(template)
        if not errors:
            filled: dict[str, str | None] = {names(n): w for n, w in words.items()}
            filled.update({names(n): v for n, v in fixed.items()})
            rendered = render(frame, filled).text
    cf.prompt = literal_prompt(j, rendered, fix_ws(p1.text),
                               "wrote the counterfactual caption the way the original is "
                               "written")
    cf.edit = edit_type(iv.plan, cf.prompt is None)
    draft.counterfactuals.append(cf)
    item.interventions = {n: values[n] for n in m.do_targets}
    item.sets = {n: values[n] for n in m.set_targets}
    item.counterfactual = cf.name
    item.written = {cf.name: dict(item.interventions)}
    item.edit = cf.edit


def literal_prompt(j: Judging, rendered: str | None, wanted: str, fixed: str) -> str | None:
    """The counterfactual prompt to write literally, or None when the template renders it (with
    `--fix`, also when it renders it in other writing: said in the header, `fixed: ...`)."""
    if rendered is not None and rendered.strip() == wanted.strip():
        return None
    if j.options.fix and rendered is not None and says_the_same(rendered, wanted):
        j.fixes.append(f"{fixed}: {rendered.strip()!r}")
        return None
    return wanted


def _cf_name(do_targets: Sequence[str], values: Mapping[str, str | None], iv: Intervention,
             words: Mapping[str, str | None]) -> str:
    if not do_targets:
        return "unchanged"
    n = do_targets[0]
    new = iv.graph_iv.get(n)
    chosen = iv.new_words.get(new) if new else None
    value = values.get(n)
    if chosen is None and value is not None:
        chosen = value
    if chosen is None:
        old = words.get(n) or n
        return cname("no_" + head_word(old), "no")
    # Named after what is new: `small` for `dog` -> `small dog`, `man` for `woman` -> `man`.
    before = set(binding.keys_of(words.get(n) or ""))
    fresh = " ".join(w for w, _, _ in split_words(chosen)
                     if binding.keys_of(w) and binding.keys_of(w)[0] not in before)
    return cname(head_word(fresh or chosen).lower(), "cf")


def write_spec(j: Judging, draft: writer.Draft, item: ImportedItem,
               is_new: Callable[[Diagnostic], bool]) -> ImportedItem:
    """Render the draft, lint what was written, and add lint's findings that `is_new`
    says this import did not already report (the header lists them too)."""
    a, opts = j.answer, j.options
    own = sorted(j.bag.items, key=Diagnostic.sort_key)
    draft.header = _header(j, own)
    text = writer.render(draft)
    display = f"{a.item_id}.scm"
    lint_own, mapped = writer.relint(draft, text, display, j.source, opts.config,
                                     opts.tokenizer)
    extra = [d for d in mapped if is_new(d)]
    if extra:
        draft.header = _header(j, sorted([*own, *extra], key=Diagnostic.sort_key))
        longer = writer.render(draft)
        # Only the header grew: lint's findings move down with the body (linting again
        # would parse the whole spec a second time).
        lint_own = writer.moved(lint_own, text, longer, display)
        text = longer
    item.scm = text
    item.diagnostics = sorted([*own, *extra], key=Diagnostic.sort_key)
    item.relint = lint_own
    item.fixes = list(j.fixes)
    return item


def _header(j: Judging, diagnostics: Sequence[Diagnostic]) -> list[str]:
    a = j.answer
    where = f"{j.source.name}:{a.span.line}:{a.span.column}"
    out = _wrap(f"Imported by `cfspec import` from {where} ({a.shape}); positions below "
                "are in that file.", "")
    for note in j.notes:
        out += _wrap(note, "")
    for f in j.fixes:
        out += _wrap(f"fixed: {f}", "")
    errors = sum(1 for d in diagnostics if d.level is Severity.ERROR)
    warnings = sum(1 for d in diagnostics if d.level is Severity.WARNING)
    if errors or warnings:
        out.append(f"{_counted(errors, 'error')} and {_counted(warnings, 'warning')} "
                   "in the answer; fix them here, then run `cfspec lint` on this file:")
    shown: Counter[str] = Counter()
    for d in diagnostics:
        shown[d.code.name] += 1
        if shown[d.code.name] <= HEADER_EACH:
            out += _diagnostic_lines(d)
    for name, count in shown.items():
        if count > HEADER_EACH:
            out += _wrap(f"... and {count - HEADER_EACH} more `{name}`: `cfspec import "
                         f"--format concise` lists every one", "")
    return out


def _diagnostic_lines(d: Diagnostic) -> list[str]:
    out = _wrap(f"{d.level.value}[{d.code.name}] at {d.span.line}:{d.span.column}: "
                f"{d.message}", "")
    for n in d.notes:
        out += _wrap(f"note: {n}", "  ")
    if d.help:
        out += _wrap(f"help: {d.help}", "  ")
    return out


def article_filter(words: str, values: dict[str, str | None], name: str) -> str:
    """`{{ A | a }}` for a variable whose words begin with the article that agrees with them
    (`An apple` -> `A banana`): the template then writes the article, and the variable's words
    and new words are the nouns alone. Empty when that would not render the prompts exactly;
    the new value in `values` loses its article when the filter is used."""
    m = _ARTICLE.match(words)
    if not m or article_for(m.group(2)) != m.group(1).lower():
        return ""
    new = values.get(name)
    stripped: str | None = None
    if new is not None:
        mv = _ARTICLE.match(new)
        if not mv or article_for(mv.group(2)) != mv.group(1).lower() \
                or mv.group(1)[0].isupper() != m.group(1)[0].isupper():
            return ""
        stripped = mv.group(2)
    if name in values:
        values[name] = stripped
    return " | a | capitalize" if m.group(1)[0].isupper() else " | a"


def edit_type(plan: changes.Plan, rendered: bool) -> str:
    """`replace` when every changed run keeps its word count (Prompt-to-Prompt aligns them one
    to one), `refine` for insertions and deletions."""
    for op in changes.opcodes(plan.t0, plan.t1):
        tag, a0, a1, b0, b1 = op
        # Artefacts are gone when the counterfactual is rendered from the template; a literal
        # counterfactual prompt keeps them, and P2P must align them too.
        if tag != "equal" and a1 - a0 != b1 - b0 \
                and not (rendered and changes.is_artefact(op, plan.t0, plan.t1)):
            return "refine"
    return "replace"


def _counted(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _wrap(text: str, indent: str) -> list[str]:
    return textwrap.wrap(text, width=96, initial_indent=indent,
                         subsequent_indent=indent + "    ", break_on_hyphens=False) or [indent]


def _collapse(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()
