# `A -> A`: a variable cannot cause itself.
scm cake {
  prompt "A {{ W }} is {{ A }} a cake."
  var W = "woman"
  var A = "cutting"
  W -> A
  A -> A  # expect: self-loop@3
  counterfactual man { do(W = "man") }
}
