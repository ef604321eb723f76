scm   messy{prompt "A {{ W }} cuts a cake."  # the caption
var W="woman"   var L : latent="hand"
L→W   counterfactual man{do(W="man")}}
