# COCO 490171_3: "A man in a wet suit riding on a surfboard with a dog."
# -> "A man in a wet suit riding on a horse with a dog."

scm surfer_dog {
  id "490171_3"
  prompt "A {{ M }} in a {{ W }} {{ R }} on {{ B | a }} with a {{ D }}."

  var M: agent = "man"
  var W: clothing = "wet suit" ask "Is the man wearing a wet suit?"
  var R: action = "riding"
  var B: vehicle = "surfboard" "what he rides"
  var D: animal = "dog"
  var O: latent = "ocean" "the waves, not named in the caption"

  O -> W "Cold sea water calls for a wet suit."
  O -> B "Waves are what a surfboard is for."
  M -> R "The man is the rider."
  B -> R "The board is what he rides on."
  M -> D "He brings his dog along."

  counterfactual horse {
    do(B = "horse")
    edit replace {
      cross_replace [0.0, 0.8]
      self_replace 0.5
      blend "surfboard" -> "horse"
      threshold 0.3
    }
  }

  # Snow instead of sea: both children of the hidden setting change with it.
  counterfactual snow {
    do(O = "snowy slope")
    set W = "ski suit"
    set B = "snowboard"
    edit replace { cross_replace 0.6  self_replace 0.4 }
  }
}
