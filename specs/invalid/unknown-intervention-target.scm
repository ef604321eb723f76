# do() names `M`, which the model does not declare.
scm cake {
  prompt "A {{ W }} is cutting a {{ C }}."
  var W = "woman"
  var C = "cake"
  W -> C
  counterfactual man { do(M = "man") }  # expect: unknown-intervention-target@27
}
