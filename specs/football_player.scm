# COCO 430961_2: "A baseball player lunges and reaches back with the ball."
# -> "A football player lunges and reaches back with the ball."

scm ball_player {
  id "430961_2"
  prompt "A {{ S }} {{ P }} {{ L }} and {{ R }} with the {{ B }}."

  var S: sport = "baseball" "the game being played"
  var P: agent = "player"
  var L: action = "lunges"
  var R: action = "reaches back"
  var B: object = "ball"

  S -> P "The sport decides what kind of player he is."
  S -> B "The sport decides what he holds."
  P -> L "The player lunges."
  P -> R "The player winds up."
  B -> R "He reaches back to throw the ball."

  counterfactual football {
    do(S = "football")
    edit replace { cross_replace [0.1, 0.8]  self_replace 0.3 }
  }

  # A tennis player swings a racket: the object downstream of the sport changes.
  counterfactual tennis {
    do(S = "tennis")
    set B = "racket"
    edit replace {
      cross_replace 0.8
      self_replace 0.4
      blend "baseball" "ball" -> "tennis" "racket"
    }
  }

  # A football player, with the new sport emphasised.
  counterfactual football_emphasis {
    do(S = "football")
    edit reweight { cross_replace 0.8  reweight "football" 3.0 }
  }
}
