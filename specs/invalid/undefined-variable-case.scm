# A placeholder in the wrong case, `{{ c }}` for `C`: one undefined-variable with a did-you-mean,
# and no follow-on errors (the counterfactual on `C` is not called a no-op, nor is `C` called
# unplaced).
scm cake {
  prompt "A {{ W }} is cutting a {{ c }}."  # expect: undefined-variable@37
  var W = "woman"
  var C = "cake"
  W -> C
  counterfactual pie { do(C = "pie") }
}
