# Variable words must be quoted strings: `woman` is a bare name here.
scm bad_words {
  prompt "A woman is cutting a cake."
  var W = woman  # expect: syntax-error@11
  var C = "cake"
}
