# replace: one word for one word, and a multi-word span for a multi-word span.
scm replace_cases {
  id "golden_replace"
  prompt "A {{ W }} is cutting into a {{ C }} with a {{ K }}."
  var W: agent = "woman"
  var C: object = "cake"
  var K: tool = "large knife"
  W -> K
  K -> C
  counterfactual man { do(W = "man") }
  counterfactual cleaver { do(K = "sharp cleaver") edit replace { cross_replace "cleaver" [0.1, 0.6]  self_replace 0.3 } }
}
