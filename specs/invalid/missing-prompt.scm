# The spec has variables and an edge but no prompt, so there is nothing to render.
scm cake {  # expect: missing-prompt@5
  var W = "woman"
  var C = "cake"
  W -> C
  counterfactual man { do(W = "man") }
}
