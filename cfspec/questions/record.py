"""One yes/no question about a pair's images, as pairs.jsonl carries it.

A question is asked of both images twice: once with the factual words (`factual`) and once with
the counterfactual words (`counterfactual`); either is None where the variable is absent in that
world (`none`). `parents` are the ids of the questions it presupposes (Davidsonian Scene Graph,
Cho et al., ICLR 2024): "Is the man cutting?" means nothing when "Is there a man?" fails, so a
scorer skips a child whose parent was answered no. `expect` is what the causal graph says the
counterfactual does to the variable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

# What a question asks (docs/commands/questions.md says what each means):
#   exists     an entity is there: "Is there a man?"
#   action     an action with its agent: "Is the man cutting?"
#   attribute  an attribute of the entity it qualifies: "Is the elephant large?"
#   quantity   how many: "Are there a lot of pigeons?"
#   place      where the scene is: "Is this on a beach?"
#   scene      what the scene is: "Is this baseball?"
#   ask        the spec's own question (`var ... ask "..."`)
Kind = Literal["exists", "action", "attribute", "quantity", "place", "scene", "ask"]
# What the causal graph says for this pair:
#   change      the variable is intervened on (`do`)
#   follow      a descendant the spec says changes (`set`)
#   may-change  another descendant of an intervened variable: the graph allows a change
#   hold        not downstream of the intervention: the answer must not change
Expect = Literal["change", "follow", "may-change", "hold"]
KINDS: tuple[str, ...] = get_args(Kind)
EXPECTS: tuple[str, ...] = get_args(Expect)


@dataclass(frozen=True)
class Question:
    id: str  # q1, q2, ... in dependency order: every parent comes before its children
    variable: str
    kind: Kind
    factual: str | None  # with the factual words; None: the variable is absent there
    counterfactual: str | None  # with the counterfactual words
    parents: tuple[str, ...]  # ids of the questions this one presupposes
    expect: Expect

    def text(self, which: int) -> str | None:
        """The question with the factual (0) or the counterfactual (1) words."""
        return self.counterfactual if which else self.factual

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "variable": self.variable, "kind": self.kind,
                "factual": self.factual, "counterfactual": self.counterfactual,
                "parents": list(self.parents), "expect": self.expect}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Question:
        """From a record that passed pair.schema.json."""
        return cls(data["id"], data["variable"], data["kind"], data["factual"],
                   data["counterfactual"], tuple(data["parents"]), data["expect"])
