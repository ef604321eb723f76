# do(W = "Woman") sets W to the words it already has (case does not matter).
scm cake {
  prompt "A {{ W }} is cutting a {{ C }}."
  var W = "woman"
  var C = "cake"
  W -> C
  counterfactual man { do(W = "Woman") set C = "pie" }  # expect: unchanged-intervention-value@31
}
