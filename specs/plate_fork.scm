# The reference study's plate example (shared/data/reference/llm_plate_fork.json, caption of
# COCO 414638_0), made a DAG: its F -> P / P -> F cycle is cut to P -> F, the human and the knife
# are latent, and the fork counterfactual changes one word instead of appending a clause.

scm plate_fork {
  id "414638_0_fork"
  prompt "A white {{ P }} with a {{ S }} piece of {{ F }} on top of it."

  var H: latent = "person" "the human who cut the food"
  var K: latent = "knife" "the tool, not named in the caption"
  var C: latent = "cutting" "the cutting action"
  var S: state = "sliced up" "the food after cutting"
  var F: food = "food"
  var P: object = "plate"
  var B: latent = "board" "the surface the food was cut on"

  H -> K "The human's intention and ability make them use the knife."
  K -> C "The knife is used for the cutting."
  B -> C "The board gives the cutting a surface."
  C -> S "The cutting leaves the food sliced."
  F -> S "What the food is decides how it comes apart."
  P -> F "The plate holds the food."

  # A fork tears rather than slices: the state downstream of the tool changes, one word for one.
  counterfactual fork {
    do(K = "fork")
    set S = "broken up"
    edit replace { cross_replace 0.8  self_replace 0.4  blend "sliced" -> "broken" }
  }
}
