# COCO 279714_2: "A baseball bat is in a window looking out over the street."
# -> "A baseball bat is in a box looking out over the street."

scm bat_window {
  id "279714_2"
  prompt "A {{ B }} is in {{ W | a }} {{ L }} over the {{ S }}."

  var B: object = "baseball bat"
  var W: place = "window" "where the bat stands"
  var L: view = "looking out" "the way the bat faces"
  var S: place = "street"
  var O: latent = "owner" "whoever left the bat there"

  O -> B "The owner keeps a bat at home."
  O -> W "The owner chose where to put it."
  W -> L "A window is what lets the bat face outside."
  S -> L "The street below is what it looks out over."

  counterfactual box {
    do(W = "box")
    edit replace { cross_replace 0.8  self_replace 0.5  blend "window" -> "box"  threshold 0.3 }
  }

  # Two words for one, and the article follows: "an umbrella stand".
  counterfactual umbrella_stand {
    do(W = "umbrella stand")
    edit refine { cross_replace 0.7  self_replace 0.3 }
  }
}
