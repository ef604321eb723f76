# The running example: COCO 158956, "A woman is cutting into a cake with a large knife."
# The graph follows the LLM answer in shared/data/reference/llm_cake_man.json.

scm cake_cutting {
  id "158956_0"
  prompt "A {{ W }} is {{ A }} into a {{ C }} with a {{ K }}."

  var W: agent = "woman" "the person cutting"
  var A: action = "cutting"
  var C: object = "cake"
  var K: tool = "large knife"

  W -> A "The woman's intention and physical ability cause the action of cutting."
  W -> K "Her agency and control enable her to hold the knife."
  K -> A "The knife is a necessary tool for cutting."
  C -> A "The cake's presence and texture affect the cutting."

  # do(W = man): the person changes; everything else is held fixed.
  counterfactual man { do(W = "man") }

  counterfactual baker {
    do(W = "baker")
    edit replace { cross_replace 0.8  self_replace 0.4 }
  }

  # A fork does not cut, so the action downstream of the tool changes too.
  counterfactual fork {
    do(K = "fork")
    set A = "digging"
    edit refine { cross_replace [0.0, 0.8]  self_replace 0.4  blend "knife" -> "fork" }
  }
}
