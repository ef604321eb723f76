"""Finding and aligning words: the one place that says which words of a prompt a phrase names
(`find_phrase`) and how two captions' words correspond (`align`). Lint, compile, the generator's
edit plan and the report all ask here, so they cannot disagree.

Punctuation: a prompt's words include its punctuation marks (`a knife, fork` is `a`, `knife`,
`,`, `fork`), and a phrase names words, not marks. `find_phrase` matches the phrase's words
against the prompt's words with punctuation skipped, and answers the indices of the words only:
`"knife fork"` in `a knife, fork and plate` is words 1 and 3, never the comma. That is what an edit
map needs: LocalBlend and the reweight equalizer take the tokens of each named word, which need
not be adjacent, and a comma's attention map says nothing about where a fork is.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

# Words and punctuation, the unit of every comparison. Apostrophes and hyphens stay in words.
WORD_RE = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*|[^\w\s]", re.UNICODE)


def normalize(word: str) -> str:
    """Case-, punctuation- and inflection-insensitive form of a word, for finding words: a
    noun and its plural get the same key (`horse`/`horses`, `bus`/`buses`, `knife`/`knives`,
    `baby`/`babies`, `man`/`men`), and so do most verb forms (`cut`/`cuts`). Keys are for
    comparing, not for showing: `horse` is `hors`."""
    w = _NON_WORD.sub("", word.lower())
    if len(w) < 3 or w in FUNCTION_WORDS:
        return w
    w = _IRREGULAR.get(w, w)
    if w.endswith("men") and len(w) > 4 and w not in _NOT_MEN:
        w = w[:-3] + "man"  # firemen, policewomen
    if w.endswith("s") and not w.endswith(("ss", "us")) and w not in _SINGULAR_S:
        w = w[:-1]
    # What is left of a plural and its singular: `horse`/`horse(s)` -> `hors`, `box(es)` ->
    # `box`, `babie(s)`/`baby` -> `babi`, `knive(s)`/`knife` -> `knif`.
    if len(w) > 3 and w.endswith("e") and w[:-1] not in FUNCTION_WORDS:  # note(s) is not `not`
        w = w[:-1]
    if len(w) > 2 and w.endswith("y"):
        w = w[:-1] + "i"
    if len(w) > 2 and w.endswith("v"):
        w = w[:-1] + "f"
    return w


_NON_WORD = re.compile(r"[^\w]")
# Words that are never inflected nouns; kept as they are so that they stay recognizable.
FUNCTION_WORDS = frozenset(
    "a an the is are was were be been being of in on at to with and or for from by into onto "
    "over under up down out off it its that this these those some any there their his her hers "
    "them they he she him has have had very not no as so but if then than which who whom what "
    "while when where how one ones other another each every all both few more most such own "
    "same just also only can could will would should may might do does did doing e g eg "
    "here near next behind above below across through around".split()
)
_IRREGULAR = {
    "men": "man", "women": "woman", "children": "child", "people": "person", "feet": "foot",
    "teeth": "tooth", "geese": "goose", "mice": "mouse", "oxen": "ox", "cacti": "cactus",
    "fungi": "fungus", "octopi": "octopus", "dice": "die", "lice": "louse", "criteria":
    "criterion", "phenomena": "phenomenon", "quizzes": "quiz",
}
_NOT_MEN = frozenset("specimen abdomen omen stamen regimen acumen yemen hymen amen".split())
# Singular words that end in `s` (words in `ss` and `us`, `bus`, `-ous`, are kept anyway).
_SINGULAR_S = frozenset(
    "gas lens canvas atlas iris tennis news series species means pants jeans shorts scissors "
    "trousers christmas chaos always perhaps yes bias alias texas paris chess "
    "physics mathematics athletics gymnastics politics economics measles diabetes".split()
)


def plural_noun(word: str) -> bool:
    """Whether a noun is plural by its form: `dogs`, `boxes`, `men`, `children`; not `bus`,
    `glass`, `news` or `tennis`. For agreement (`cfspec.lang.agreement`), never for finding
    words."""
    w = exact(word)
    if w in _IRREGULAR:
        return True
    return len(w) > 2 and w.endswith("s") and not w.endswith(("ss", "us", "is")) \
        and w not in _SINGULAR_S and w not in FUNCTION_WORDS


def exact(word: str) -> str:
    return re.sub(r"[^\w]", "", word.lower()) or word


def split_words(text: str) -> list[tuple[str, int, int]]:
    return [(m.group(), m.start(), m.end()) for m in WORD_RE.finditer(text)]



def is_punctuation(word: str) -> bool:
    return not any(ch.isalnum() for ch in word)


def find_phrase(words: Sequence[str], phrase: str) -> list[int]:
    """The indices in `words` (a prompt's words and punctuation marks, as `split_words` gives
    them) of the first place the phrase's words stand one after another, punctuation between
    them skipped; [] when nowhere or when the phrase has no words. Case-, punctuation- and
    plural-insensitive (`normalize`). The indices are of words only (see the module's note)."""
    return next(phrase_places(words, phrase), [])


def phrase_places(words: Sequence[str], phrase: str) -> Iterator[list[int]]:
    """Every place of the phrase in `words`, first to last, as `find_phrase` finds the first
    (places may overlap: `a a` is twice in `a a a`)."""
    wanted = [normalize(w) for w, _, _ in split_words(phrase) if not is_punctuation(w)]
    at = [i for i, w in enumerate(words) if not is_punctuation(w)]
    keys = [normalize(words[i]) for i in at]
    for k in key_places(keys, wanted):
        yield at[k : k + len(wanted)]


def key_places(keys: Sequence[str | None], wanted: Sequence[str]) -> Iterator[int]:
    """Every index where the keys `wanted` stand one after another in `keys`, first to last;
    nothing when `wanted` is empty. `phrase_places` is this over `normalize`d words; a caller
    with keys of its own (the importer's stemmed keys) uses it directly, with None for a word
    that may not be part of a place."""
    wanted = list(wanted)
    n = len(wanted)
    if not n:
        return
    for k in range(len(keys) - n + 1):
        # Compared as lists: a tuple of keys equals no list of them.
        if keys[k] == wanted[0] and list(keys[k : k + n]) == wanted:
            yield k


# Above this many differing words in the middle, the middle is one change: the alignment is
# quadratic in it, and a caption that long is already `prompt-too-long` anyway.
_MAX_ALIGNED = 300

Opcode = tuple[str, int, int, int, int]
ARTICLES = frozenset({"a", "an"})


def align(a: list[str], b: list[str]) -> list[Opcode]:
    """How two captions' words correspond, as a person reads them, as difflib-style opcodes.

    The common start and end are matched first; the middle is aligned with the fewest edits
    (Levenshtein: a substitution costs as much as an insertion or a deletion), a substitution
    preferred where two alignments cost the same. A change is one contiguous run of changed
    words: `stop sign` -> `traffic light` is one change, and an unchanged word between two
    changes keeps them two (`woman ... rainy` -> `man ... snowy`); punctuation does not part
    words, so an unchanged comma inside a run stays in it (`red, white` -> `blue, green`). Two
    things that change places around unchanged words are two changes (`dog sitting behind a
    shoe` -> `shoe sitting behind a dog`), although substituting every word costs as little. A
    word repeated elsewhere in the caption cannot pull the alignment apart. Linear beyond
    `_MAX_ALIGNED` differing words, where the middle is one change."""
    n, m = len(a), len(b)
    head = 0
    while head < n and head < m and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < n - head and tail < m - head and a[n - 1 - tail] == b[m - 1 - tail]:
        tail += 1
    ops: list[Opcode] = []
    if head:
        ops.append(("equal", 0, head, 0, head))
    a_mid, b_mid = a[head : n - tail], b[head : m - tail]
    if a_mid or b_mid:
        if len(a_mid) + len(b_mid) > _MAX_ALIGNED or not a_mid or not b_mid:
            middle: list[Opcode] = [(_tag(n - tail - head, m - tail - head), head, n - tail,
                                     head, m - tail)]
        else:
            middle = [(tag, i1 + head, i2 + head, j1 + head, j2 + head)
                      for tag, i1, i2, j1, j2 in _fewest_edits(a_mid, b_mid)]
        for op in middle:
            ops += _split_swap(op, a, b)
    if tail:
        ops.append(("equal", n - tail, n, m - tail, m))
    return ops


_MAX_SWAP = 24  # words of one change searched for two things that change places


def _split_swap(op: Opcode, a: list[str], b: list[str]) -> list[Opcode]:
    """A change `X M Y` -> `Y M X` (M unchanged, X and Y any words, plurals aside) as the two
    changes it is: X -> Y and Y -> X around the kept M."""
    tag, i1, i2, j1, j2 = op
    n = i2 - i1
    if tag != "replace" or n != j2 - j1 or n < 3 or n > _MAX_SWAP:
        return [op]
    old, new = a[i1:i2], b[j1:j2]
    keys_old, keys_new = [normalize(w) for w in old], [normalize(w) for w in new]
    for x in range(1, n - 1):  # X = old[:x]
        for y in range(1, n - x):  # Y = old[n - y:], M = old[x:n - y]
            m = n - x - y
            if old[x:x + m] == new[y:y + m] and keys_old[:x] == keys_new[n - x:] \
                    and keys_old[n - y:] == keys_new[:y] and keys_old[:x] != keys_old[n - y:]:
                return [("replace", i1, i1 + x, j1, j1 + y),
                        ("equal", i1 + x, i1 + x + m, j1 + y, j1 + y + m),
                        ("replace", i2 - y, i2, j2 - x, j2)]
    return [op]


def _tag(len_a: int, len_b: int) -> str:
    return "replace" if len_a and len_b else "delete" if len_a else "insert"


def _fewest_edits(a: list[str], b: list[str]) -> list[Opcode]:
    """Levenshtein alignment; among equally cheap alignments the one with the fewest changes
    (runs of consecutive edits: `while smiling and` -> `while a child is smiling` is one
    change, not an insertion and a deletion), then, read back from the start, a substitution
    (or a match) before an insertion or a deletion. Consecutive edits are one change; so are
    two changes with only punctuation between them."""
    n, m = len(a), len(b)
    # cost[s][i][j]: edits * big + changes that turn a[i:] into b[j:], where s = 1 when the
    # step before was an edit (so an edit now continues its change instead of opening one).
    big = n + m + 1
    cost = [[[0] * (m + 1) for _ in range(n + 1)] for _ in range(2)]
    for i in range(n, -1, -1):
        for j in range(m, -1, -1):
            for s in (0, 1):
                if i == n and j == m:
                    continue
                step = big + (0 if s else 1)  # one edit; a new change unless one is open
                options = []
                if i < n and j < m:
                    options.append(cost[0][i + 1][j + 1] if a[i] == b[j]
                                   else cost[1][i + 1][j + 1] + step)
                if i < n:
                    options.append(cost[1][i + 1][j] + step)
                if j < m:
                    options.append(cost[1][i][j + 1] + step)
                cost[s][i][j] = min(options)
    # Each step as (same, i, j): a match, or an edit at a[i]/b[j].
    groups: list[list[int]] = []  # [same, i0, i1, j0, j1]
    i = j = s = 0
    while i < n or j < m:
        step = big + (0 if s else 1)
        here = cost[s][i][j]
        if i < n and j < m and a[i] == b[j] and here == cost[0][i + 1][j + 1]:
            same, di, dj = True, 1, 1
        elif i < n and j < m and a[i] != b[j] and here == cost[1][i + 1][j + 1] + step:
            same, di, dj = False, 1, 1
        elif i < n and here == cost[1][i + 1][j] + step:
            same, di, dj = False, 1, 0
        else:
            same, di, dj = False, 0, 1
        if groups and groups[-1][0] == same:
            groups[-1][2] += di
            groups[-1][4] += dj
        else:
            groups.append([same, i, i + di, j, j + dj])
        i, j, s = i + di, j + dj, 0 if same else 1
    # Unchanged punctuation between two changes does not part them: `red, white` -> `blue,
    # green` is one change.
    merged: list[list[int]] = []
    for k, g in enumerate(groups):
        inner = 0 < k < len(groups) - 1 and g[0] and all(is_punctuation(w) for w in a[g[1]:g[2]])
        if merged and not merged[-1][0] and (inner or not g[0]):
            merged[-1][2], merged[-1][4] = g[2], g[4]
        else:
            merged.append(list(g))
    return [("equal" if same else _tag(i1 - i0, j1 - j0), i0, i1, j0, j1)
            for same, i0, i1, j0, j1 in merged]


def written_alike(before: Sequence[str], after: Sequence[str]) -> bool:
    """Whether two runs of words differ only in how they are written, not in what they say:
    the same letters and digits in the same order (`They'll` / `They 'll`, `"` / ```` `` ````,
    `St.` / `St .`). Such a change is a caption artefact, never an intervention."""
    return _squash(before) == _squash(after)


def _squash(words: Sequence[str]) -> str:
    return "".join(ch for w in words for ch in w.lower() if ch.isalnum())
