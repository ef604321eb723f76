# What the bundled specs do not show: an escape, the Unicode arrow, a suppression comment,
# `blend_start` and a filter. Tokenized by tests/test_vscode_grammar.py with the rest.
scm tour {  # cfspec: ignore[unused-variable]
  id "tour_0"
  prompt "{{ W | capitalize }} holds {{ K | a }} \"here\"."
  var W: agent = "woman"
  var K: tool = "knife"
  W → K
  counterfactual fork {
    do(K = "fork")
    edit refine { blend "knife" -> "fork"  blend_start 0.2  threshold .3 }
  }
}
