# The factual photo sits with the spec's other settings, at the head.
scm photo {
  id "158956_0"
  image "000000158956.jpg"
  prompt "A {{W}} cuts a cake."

  var W = "woman"

  counterfactual man { do(W = "man") }
}
