# COCO 414638_0: "A white plate with a sliced up piece of food on top of it."
# -> "A white board with a sliced up piece of food on top of it."

scm plate_food {
  id "414638_0"
  prompt "A {{ C }} {{ P }} with a {{ S }} {{ F }} on top of it."

  var C: color = "white"
  var P: object = "plate" "what the food lies on"
  var S: state = "sliced up"
  var F: food = "piece of food"
  var H: latent = "cook" "whoever prepared the food"

  H -> S "The cook sliced the food."
  H -> P "The cook chose what to put it on."
  P -> C "The dish sets the color: plates are often white."
  F -> S "Soft food is easy to slice up."

  counterfactual board {
    do(P = "board")
    edit replace { cross_replace 0.8  self_replace 0.6  blend "plate" -> "board"  threshold 0.4 }
  }

  # A cutting board is wooden, not white: the color downstream of the dish changes too.
  counterfactual cutting_board {
    do(P = "cutting board")
    set C = "wooden"
    edit refine { cross_replace 0.7  self_replace 0.4  blend "plate" -> "cutting" "board" }
  }
}
