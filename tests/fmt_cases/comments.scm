# file header comment

scm   cake {   # trails the opening brace
  # before the prompt
  prompt "A {{ W }} cuts a cake."   # trails the prompt
  var W =    # inside a var: moves before it
     "woman"
  var C = "cake"


  # two blank lines above collapse to one
  W -> C # trailing edge comment
  counterfactual man { # trails the block
    do(W = "man")
    # before the closing brace
  }
  # last in the spec
}
# end of file
