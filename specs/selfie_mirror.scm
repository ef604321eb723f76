# COCO 164602_4: "A man and woman brushing their teeth and taking a selfie photo with a camera
# in a bathroom mirror." -> the same caption without "with a camera in a bathroom mirror."
# (a deletion; caption_1 also has no final period).

scm selfie_mirror {
  id "164602_4"
  prompt "A {{ M }} and {{ W }} {{ A }} and {{ S }} {{ C }} {{ R }}."

  var M: agent = "man"
  var W: agent = "woman"
  var A: action = "brushing their teeth"
  var S: action = "taking a selfie photo"
  var C: tool = "with a camera" "the camera, seen in the mirror"
  var R: place = "in a bathroom mirror" "the mirror they photograph"

  M -> A "The man is brushing his teeth."
  W -> A "The woman is brushing hers."
  M -> S "The couple decide to take a selfie together."
  W -> S "Both pose for the photo."
  R -> C "Shooting into the mirror is what puts the camera in the picture."
  C -> S "The camera takes the selfie."

  # No mirror: the camera is no longer in the shot, so its phrase goes too. A literal prompt,
  # because the reference caption also drops the final period.
  counterfactual no_mirror {
    do(R = none)
    set C = none
    prompt "A man and woman brushing their teeth and taking a selfie photo"
    edit refine { cross_replace 0.8  self_replace 0.4 }
  }

  # The same deletion rendered from the template: it keeps the period.
  counterfactual no_mirror_rendered {
    do(R = none)
    set C = none
    edit refine { cross_replace [0.0, 0.7]  self_replace 0.3 }
  }

  # Another device, same position: a one-word swap.
  counterfactual phone {
    do(C = "with a phone")
    edit replace { cross_replace 0.8  self_replace 0.5  blend "camera" -> "phone" }
  }
}
