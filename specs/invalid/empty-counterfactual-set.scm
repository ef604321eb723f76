# Every combination of the set is the factual caption: it makes no counterfactual.
scm barber {
  prompt "{{ R | a }} {{ G }} barber"
  var R = "White"
  var G = "male"
  var L: latent = "appearance"
  R -> L
  G -> L
  counterfactual black { do(R = "Black") }
  counterfactuals same { do(R in ["white"], G = "male") }  # expect: empty-counterfactual-set@19 unchanged-intervention-value@35(warning) unchanged-intervention-value@49(warning)
}
