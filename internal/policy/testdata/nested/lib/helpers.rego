package warden.lib

is_chat if input.action == "chat.completions"
