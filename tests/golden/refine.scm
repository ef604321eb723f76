# refine: an insertion (one word becomes two) and a deletion (a phrase is removed).
scm refine_cases {
  id "golden_refine"
  prompt "A {{ P }} taking a selfie photo {{ M }}."
  var P: agent = "man and woman"
  var M: object = "with a camera in a bathroom mirror"
  P -> M
  counterfactual insert {
    do(P = "man and small woman")
    edit { threshold 0.4 }
  }
  counterfactual delete { do(M = none) }
}
