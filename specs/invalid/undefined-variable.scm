# The prompt template, an edge and a `set` name variables that are never declared.
scm cake {
  prompt "A {{ W }} is {{ A }} a {{ C }} with a {{ Knife }}."  # expect: undefined-variable@52
  var W = "woman"
  var A = "cutting"
  var C = "cake"
  W -> A
  C -> A
  K -> A  # expect: undefined-variable@3
  counterfactual man {
    do(W = "man")
    set X = "slicing"  # expect: undefined-variable@9
  }
}
