# Two specs share a name, and two others share an id.
scm cake {
  prompt "A {{ W }} is cutting a {{ C }}."
  var W = "woman"
  var C = "cake"
  W -> C
  counterfactual man { do(W = "man") }
}

scm cake {  # expect: duplicate-spec@5
  prompt "A {{ W }} is slicing a {{ C }}."
  var W = "woman"
  var C = "cake"
  W -> C
  counterfactual man { do(W = "man") }
}

scm pie {
  id "158956_0"
  prompt "A {{ W }} is cutting a {{ C }}."
  var W = "woman"
  var C = "pie"
  W -> C
  counterfactual man { do(W = "man") }
}

scm tart {
  id "158956_0"  # expect: duplicate-spec@6
  prompt "A {{ W }} is cutting a {{ C }}."
  var W = "woman"
  var C = "tart"
  W -> C
  counterfactual man { do(W = "man") }
}
