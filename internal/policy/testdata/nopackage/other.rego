package someone.else

allow := true
