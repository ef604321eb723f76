# A template's `the` before a placeholder meets the value's own `a`: "the a zebra"; and a
# counterfactual's own prompt that drops `horse` but keeps its `the`.
scm beach {
  prompt "A {{ M }} rides the {{ H }} on the beach."
  var M = "man"
  var H = "horse"
  M -> H
  counterfactual zebra { do(H = "a zebra") }  # expect: dangling-determiner@33
  counterfactual walks {
    do(H = none)
    prompt "A man rides the on the beach."  # expect: dangling-determiner@25
  }
}
