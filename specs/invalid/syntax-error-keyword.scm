# A misspelt keyword, and nothing else wrong: `lint --fix` (and an editor's quick fix) writes
# the keyword the parser reads on with, `counterfactual`.
scm cake {
  prompt "A {{ W }} is cutting a {{ C }}."
  var W = "woman"
  var C = "cake"
  W -> C
  conterfactual man { do(W = "man") }  # expect: syntax-error@3
}
