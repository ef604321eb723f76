# `horse` is removed, but the caption's `a` before it stays: "A man rides a on the beach."
scm beach {
  prompt "A man rides a horse on the beach."
  var M = "man"
  var H = "horse"
  M -> H
  counterfactual no_horse { do(H = none) }  # expect: dangling-determiner@36
}
