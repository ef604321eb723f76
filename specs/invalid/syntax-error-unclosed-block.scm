# A counterfactual's `}` is missing: the error is where the next item starts, not at the end of
# the file, and the rest of the spec is read as if the block were closed.
scm cake {
  prompt "A {{ W }} is cutting a {{ C }}."
  var W = "woman"
  var C = "cake"
  counterfactual man { do(W = "man")
  W -> C  # expect: syntax-error@3
  counterfactual pie { do(C = "pie") }
}
