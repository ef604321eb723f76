# Two counterfactuals are both called `man`.
scm cake {
  prompt "A {{ W }} is cutting a {{ C }}."
  var W = "woman"
  var C = "cake"
  W -> C
  counterfactual man { do(W = "man") }
  counterfactual man { do(W = "boy") }  # expect: duplicate-counterfactual@18
}
