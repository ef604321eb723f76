# COCO 474021_0: "A couple of guys playing on the nintendo wii at a gathering."
# -> "A couple of guys playing on the nintendo wii at a party."

scm wii_gathering {
  id "474021_0"
  prompt "A couple of {{ G }} {{ P }} on the {{ N }} at {{ E | a }}."

  var G: agent = "guys"
  var P: action = "playing"
  var N: device = "nintendo wii" "the game console"
  var E: event = "gathering" "the occasion"
  var H: latent = "host" "whoever invited everyone"

  H -> E "The host throws the gathering."
  H -> N "The host sets up the console."
  E -> G "The occasion decides who comes."
  G -> P "The guys are the players."
  N -> P "The console is what they play on."

  counterfactual party {
    do(E = "party")
    edit replace { cross_replace 0.7  self_replace [0.2, 0.6] }
  }

  # At an office party the guests are coworkers: a descendant changes, and the article too.
  counterfactual office_party {
    do(E = "office party")
    set G = "coworkers"
    edit refine { cross_replace 0.8  self_replace 0.4  blend "guys" -> "coworkers" }
  }
}
