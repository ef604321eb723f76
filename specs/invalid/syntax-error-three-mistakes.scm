# Three separate mistakes, each reported once with its position and nothing after it: a
# misspelt keyword (did you mean `prompt`?), a bare word where words must be a quoted string,
# and a misspelt keyword that first reads as the start of an edge (did you mean `counterfactual`?).
scm cake {
  promt "A {{ W }} is cutting a {{ C }}."  # expect: syntax-error@3
  var W = woman  # expect: syntax-error@11
  var C = "cake"
  W -> C
  counterfacual man { do(W = "man") }  # expect: syntax-error@3
  counterfactual pie { do(C = "pie") }
}
