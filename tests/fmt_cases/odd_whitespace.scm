scm crlf {
	prompt "A {{ W }} cuts a {{ C }}."
	var W = "woman"   

   var C = "café ☕"		# café comment


	counterfactual man {	do(W = "man")	}
}
