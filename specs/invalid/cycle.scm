# W -> A -> K -> W is a cycle: a structural causal model must be acyclic.
scm cake {
  prompt "A {{ W }} is {{ A }} a cake with a {{ K }}."
  var W = "woman"
  var A = "cutting"
  var K = "knife"
  W -> A  # expect: cycle@3
  A -> K
  K -> W
  counterfactual man { do(W = "man") }
}
