# The first spec declares no variables (an error); the second declares variables but no edges
# (a warning).
scm nothing {  # expect: empty-graph@5
  prompt "A woman is cutting a cake."
  counterfactual cake_stronger { edit reweight { reweight "cake" 2.0 } }
}

scm flat {  # expect: empty-graph@5(warning)
  prompt "A {{ W }} is cutting a {{ C }}."
  var W = "woman"
  var C = "cake"
  counterfactual man { do(W = "man") }
}
