# The prompt template uses a statement, an unknown filter and an expression: only {{ VAR }}
# and {{ VAR | filter }} are allowed.
scm cake {
  prompt "{% if x %}A {{ W | title }} is cutting a {{ C.upper() }}."  # expect: template-error@11 template-error@30 template-error@52
  var W = "woman"
  var C = "cake"
  W -> C
  counterfactual man { do(W = "man") }
}
