# reweight: same words, more attention on one of them; and a descendant that changes with it.
scm reweight_cases {
  id "golden_reweight"
  prompt "A man in a wet suit riding on a {{ B }} with a {{ D }}."
  var B: object = "surfboard"
  var D: animal = "dog"
  var R: latent = "the rider's balance"
  R -> B
  B -> D
  counterfactual emphasis {
    do(B = "surfboard")  # cfspec: ignore[unchanged-intervention-value]
    edit reweight { reweight "surfboard" 2.5 }
  }
  counterfactual horse {
    do(B = "horse")
    set D = "foal"
    edit { blend "surfboard" -> "horse" }
  }
}
