# The spec's own questions: `ask` comes last, after the description.
scm  asks{prompt "A {{W}} in a {{ S }}."
var W:agent="man"   ask   "Is there a man in a suit?"
var S : clothing = "suit" "what he wears"ask"Is the man wearing a \"suit\"?"
   W->S counterfactual woman{do(W="woman")}}
