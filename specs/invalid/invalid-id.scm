# The id becomes a folder name, so `../escape` (a path traversal) is rejected.
scm cake {
  id "../escape"  # expect: invalid-id@6
  prompt "A {{ W }} is cutting a {{ C }}."
  var W = "woman"
  var C = "cake"
  W -> C
  counterfactual man { do(W = "man") }
}
