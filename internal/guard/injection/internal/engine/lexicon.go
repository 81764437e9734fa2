package engine

// Concepts are the word classes the rules are written in. A word may belong to several.
const (
	cIgnore     = iota // ignore, disregard, forget, override, bypass
	cPrior             // previous, above, earlier, all, your, system
	cInstr             // instructions, rules, guidelines, prompt, directives
	cEverything        // everything, all, anything
	cBefore            // before, above, previously, so far
	cNew               // new, updated, different, real
	cFrom              // from
	cNow               // now
	cOn                // on, onwards
	cYou               // you, you're, yourself
	cBe                // are, will, be, become, shall
	cAct               // act, behave, respond, answer
	cAs                // as, like
	cPretend           // pretend, roleplay, imagine you are, simulate, impersonate
	cMode              // mode
	cPrivMode          // developer, debug, admin, god, sudo, root, maintenance, unrestricted
	cEnable            // enable, activate, enter, switch, turn on
	cReveal            // reveal, show, print, repeat, tell, output, leak
	cSecret            // password, secret, key, credentials, token, passcode
	cSysPrompt         // prompt, system message, instructions, configuration
	cNeg               // not, never, don't, no
	cRestrict          // restrictions, limits, filters, censorship, ethics, guidelines, policies
	cWithout           // without, no, free, unbound, remove, disable
	cUnrestr           // unrestricted, unfiltered, uncensored, jailbreak, jailbroken, amoral
	cPersona           // DAN, STAN, DUDE, AIM, AntiGPT
	cDo                // do
	cAnything          // anything
	cAI                // ai, assistant, chatbot, model, llm, gpt, chatgpt, claude, gemini, bot
	cUser              // user, human, reader, recipient
	cTell              // tell, inform, mention, notify, alert, warn
	cResponse          // response, answer, reply, output, summary, completion
	cYour              // your
	cEnd               // end, stop, close
	cInput             // input, text, context, document, data, content, email, message
	cAuthority         // developer, creator, admin, owner, boss, supervisor, openai, anthropic
	cIAm               // i'm, i am, this is, speaking
	cDecode            // decode, decrypt, deobfuscate, convert, translate, reverse
	cEncoding          // base64, hex, rot13, binary, morse, cipher, caesar, reversed, backwards
	cExecute           // follow, execute, run, obey, comply, perform, carry out
	cStay              // stay, remain, keep
	cCharacter         // character, role, persona
	cRole              // role labels at the start of a line: system, assistant, user, human, ai
	cWhat              // what, what's
	cIs                // is, are, was
	cAbove             // above, preceding, earlier, prior text
	cWords             // words, text, sentences, lines, message
	cPolicy            // policy, policies, guidelines, content policy, terms
	cCompanyAI         // openai, anthropic, google, meta, microsoft
	cInstead           // instead, rather (an instruction shift)
	cVisit             // visit, click, navigate, download, install, subscribe
	cSend              // send, forward, transfer, submit
	cHypo              // hypothetical, imagine, suppose, fictional, scenario, story, game
	cAllow             // allowed, permitted, authorised, free to, able to
	cFragment          // letter, character, digit, hint, clue, rhyme, length, backwards: a piece of a secret
	cLonger            // longer ("no longer"), anymore
	cRefuse            // refuse, decline, reject, deny, censor
	numConcepts
)

type mask = uint64

func bit(c int) mask { return 1 << uint(c) }

// lexicon lists words in their folded form (the folding is applied again when the table is built,
// so confusable letters may be written either way). A trailing '*' marks a stem that matches any
// word it begins.
var lexicon = map[string][]int{
	// override verbs (en, es, fr, de, it, pt, nl, ru, pl, tr, ar, hi, zh, ja, ko)
	"ignor*": {cIgnore}, "disregard*": {cIgnore}, "forget*": {cIgnore}, "forgot": {cIgnore},
	"overrid*": {cIgnore}, "overwrit*": {cIgnore}, "bypass*": {cIgnore}, "neglect*": {cIgnore},
	"discard*": {cIgnore}, "skip": {cIgnore}, "abandon*": {cIgnore}, "omit": {cIgnore},
	"dismiss": {cIgnore}, "scrap": {cIgnore}, "nevermind": {cIgnore}, "supersede*": {cIgnore},
	"olvid*": {cIgnore}, "descart*": {cIgnore}, "omite": {cIgnore}, "omitir": {cIgnore},
	"oublie*": {cIgnore}, "oublier": {cIgnore}, "vergiss": {cIgnore}, "vergessen": {cIgnore},
	"missacht*": {cIgnore}, "dimentica*": {cIgnore}, "esquec*": {cIgnore}, "desconsider*": {cIgnore},
	"negeer*": {cIgnore}, "vergeet": {cIgnore}, "игнорир*": {cIgnore}, "проигнорир*": {cIgnore},
	"забудь*": {cIgnore}, "забыть": {cIgnore}, "zignoruj": {cIgnore}, "zapomnij": {cIgnore},
	"yoksay*": {cIgnore}, "unut": {cIgnore}, "تجاهل": {cIgnore}, "انس": {cIgnore},
	"अनदेखा": {cIgnore}, "भूल": {cIgnore}, "নজর": {cIgnore}, "উপেক্ষা": {cIgnore},
	"忽略": {cIgnore}, "忽视": {cIgnore}, "无视": {cIgnore}, "無視": {cIgnore}, "忘记": {cIgnore},
	"忘掉": {cIgnore}, "忘れ": {cIgnore}, "무시*": {cIgnore}, "잊어*": {cIgnore}, "잊고*": {cIgnore},

	"previous*": {cPrior, cBefore}, "prior": {cPrior}, "preceding": {cPrior, cAbove},
	"earlier": {cPrior, cBefore}, "initial": {cPrior}, "original": {cPrior}, "former": {cPrior},
	"existing": {cPrior}, "default": {cPrior}, "old": {cPrior}, "above": {cPrior, cBefore, cAbove},
	"all": {cPrior, cEverything}, "any": {cPrior, cEverything}, "every": {cPrior, cEverything},
	"these": {cPrior}, "those": {cPrior}, "given": {cPrior}, "current": {cPrior},
	"system": {cPrior, cPrivMode, cRole}, "your": {cPrior, cYour},
	"anterior*": {cPrior, cBefore}, "precedent*": {cPrior}, "vorherig*": {cPrior, cBefore},
	"bisherig*": {cPrior}, "alle": {cPrior, cEverything}, "todas": {cPrior, cEverything},
	"todos": {cPrior, cEverything}, "toutes": {cPrior, cEverything}, "tous": {cPrior, cEverything},
	"tutte": {cPrior, cEverything}, "tutti": {cPrior, cEverything}, "vorige": {cPrior},
	"предыдущ*": {cPrior, cBefore}, "все": {cPrior, cEverything}, "всё": {cPrior, cEverything},
	"poprzedni*": {cPrior}, "önceki": {cPrior}, "onceki": {cPrior}, "السابقة": {cPrior},
	"पिछले": {cPrior}, "सभी": {cPrior, cEverything}, "之前": {cPrior}, "以前": {cPrior},
	"先前": {cPrior}, "所有": {cPrior, cEverything}, "上面": {cPrior, cAbove}, "以上": {cPrior, cAbove},
	"前の": {cPrior}, "すべて": {cPrior, cEverything}, "이전*": {cPrior}, "모든*": {cPrior, cEverything},

	"instruction*": {cInstr, cSysPrompt}, "instruct*": {cInstr}, "rule": {cInstr}, "rules": {cInstr, cRestrict},
	"direction*": {cInstr}, "directive*": {cInstr}, "guideline*": {cInstr, cRestrict, cPolicy},
	"prompt": {cInstr, cSysPrompt}, "prompts": {cInstr, cSysPrompt}, "constraint*": {cInstr, cRestrict},
	"restriction*": {cInstr, cRestrict}, "programming": {cInstr}, "command*": {cInstr},
	"order*": {cInstr}, "guidance": {cInstr}, "context": {cInstr, cInput}, "training": {cInstr},
	"protocol*": {cInstr}, "safeguard*": {cInstr, cRestrict}, "task*": {cInstr},
	"instrucc*": {cInstr, cSysPrompt}, "instrucoes": {cInstr, cSysPrompt}, "instrucao": {cInstr},
	"istruzion*": {cInstr, cSysPrompt}, "anweisung*": {cInstr, cSysPrompt}, "regel*": {cInstr, cRestrict},
	"regla*": {cInstr, cRestrict}, "regra*": {cInstr, cRestrict}, "regole": {cInstr, cRestrict},
	"regles": {cInstr, cRestrict}, "consigne*": {cInstr}, "indicacion*": {cInstr},
	"directriz*": {cInstr}, "richtlinie*": {cInstr, cPolicy}, "vorgabe*": {cInstr},
	"instructie*": {cInstr}, "инструкц*": {cInstr, cSysPrompt}, "правил*": {cInstr, cRestrict},
	"указани*": {cInstr}, "instrukcj*": {cInstr}, "talimat*": {cInstr}, "التعليمات": {cInstr},
	"تعليمات": {cInstr}, "निर्देश*": {cInstr}, "নির্দেশ*": {cInstr}, "指令": {cInstr}, "指示": {cInstr},
	"规则": {cInstr, cRestrict}, "規則": {cInstr, cRestrict}, "提示": {cInstr, cSysPrompt},
	"命令": {cInstr}, "지시*": {cInstr}, "지침*": {cInstr}, "규칙*": {cInstr, cRestrict}, "명령*": {cInstr},

	"everything": {cEverything}, "anything": {cEverything, cAnything}, "whatever": {cEverything},
	"todo": {cEverything}, "tout": {cEverything}, "alles": {cEverything}, "tutto": {cEverything},
	"before": {cBefore}, "previously": {cBefore}, "hitherto": {cBefore}, "antes": {cBefore},
	"avant": {cBefore}, "vorher": {cBefore}, "zuvor": {cBefore}, "prima": {cBefore}, "ранее": {cBefore},
	"said": {cBefore}, "told": {cBefore}, "wrote": {cBefore}, "written": {cBefore},

	"new": {cNew}, "updated": {cNew}, "different": {cNew}, "real": {cNew}, "true": {cNew},
	"actual": {cNew}, "revised": {cNew}, "nuevas": {cNew}, "nuevo*": {cNew}, "nouvelle*": {cNew},
	"neue*": {cNew}, "nuove": {cNew}, "novas": {cNew}, "новые": {cNew}, "новая": {cNew}, "新的": {cNew},
	"from": {cFrom}, "now": {cNow}, "on": {cOn}, "onward*": {cOn}, "henceforth": {cFrom, cNow, cOn},
	"ahora": {cNow}, "maintenant": {cNow}, "jetzt": {cNow}, "ora": {cNow}, "agora": {cNow},
	"теперь": {cNow}, "现在": {cNow}, "今から": {cNow}, "지금부터": {cNow},

	"you": {cYou}, "youre": {cYou, cBe}, "yourself": {cYou}, "u": {cYou}, "thou": {cYou},
	"are": {cBe, cIs}, "will": {cBe}, "be": {cBe}, "become": {cBe}, "shall": {cBe}, "re": {cBe},
	"act": {cAct}, "acting": {cAct}, "behave": {cAct}, "respond": {cAct, cResponse},
	"as": {cAs}, "like": {cAs},
	"pretend*": {cPretend, cHypo}, "roleplay*": {cPretend, cHypo}, "impersonat*": {cPretend},
	"simulat*": {cPretend}, "emulat*": {cPretend}, "embody": {cPretend}, "finge": {cPretend},
	"fingir": {cPretend}, "imagina": {cPretend, cHypo}, "imagine": {cPretend, cHypo}, "stell": {cPretend, cHypo},
	"mode": {cMode}, "modo": {cMode}, "modus": {cMode}, "режим": {cMode}, "模式": {cMode}, "モード": {cMode},
	"developer": {cPrivMode, cAuthority}, "debug*": {cPrivMode}, "admin*": {cPrivMode, cAuthority},
	"god": {cPrivMode}, "sudo": {cPrivMode}, "root": {cPrivMode}, "maintenance": {cPrivMode},
	"diagnostic": {cPrivMode}, "superuser": {cPrivMode}, "unrestricted": {cPrivMode, cUnrestr},
	"privileged": {cPrivMode}, "dev": {cPrivMode}, "jailbreak*": {cPrivMode, cUnrestr},
	"desarrollador": {cPrivMode, cAuthority}, "developpeur": {cPrivMode, cAuthority},
	"entwickler*": {cPrivMode, cAuthority}, "sviluppatore": {cPrivMode, cAuthority},
	"разработчик*": {cPrivMode, cAuthority}, "开发者": {cPrivMode, cAuthority}, "开发人员": {cPrivMode, cAuthority},
	"管理员": {cPrivMode, cAuthority}, "enable*": {cEnable}, "activat*": {cEnable}, "enter": {cEnable},
	"switch*": {cEnable}, "engage": {cEnable}, "unlock*": {cEnable}, "activa*": {cEnable},
	"aktivier*": {cEnable}, "enabled": {cEnable},

	"reveal*": {cReveal}, "show": {cReveal}, "print*": {cReveal}, "repeat*": {cReveal},
	"tell": {cReveal, cTell}, "output": {cReveal, cResponse}, "leak*": {cReveal}, "display*": {cReveal},
	"disclose*": {cReveal}, "expose": {cReveal}, "recite": {cReveal}, "spell": {cReveal},
	"share": {cReveal}, "give": {cReveal}, "dump": {cReveal}, "echo": {cReveal}, "provide": {cReveal},
	"write": {cReveal}, "list": {cReveal}, "paste": {cReveal}, "type": {cReveal}, "say": {cReveal},
	"revela*": {cReveal}, "muestra*": {cReveal}, "mostrar": {cReveal}, "dime": {cReveal},
	"decime": {cReveal}, "revele*": {cReveal}, "montre*": {cReveal},
	"donne*": {cReveal}, "zeig*": {cReveal}, "verrat*": {cReveal}, "gib": {cReveal}, "nenne": {cReveal},
	"mostra*": {cReveal}, "rivela*": {cReveal}, "dimmi": {cReveal}, "diga": {cReveal}, "diz": {cReveal},
	"покажи*": {cReveal}, "скажи*": {cReveal}, "раскрой*": {cReveal}, "назови*": {cReveal},
	"выведи*": {cReveal}, "告诉": {cReveal, cTell}, "透露": {cReveal}, "泄露": {cReveal},
	"显示": {cReveal}, "输出": {cReveal}, "教えて": {cReveal}, "見せて": {cReveal}, "알려*": {cReveal},
	"보여*": {cReveal}, "बताओ": {cReveal}, "बताएं": {cReveal}, "बताइए": {cReveal}, "দিন": {cReveal},

	"password*": {cSecret}, "passwort": {cSecret}, "contrasena": {cSecret}, "senha": {cSecret},
	"passcode*": {cSecret}, "passphrase*": {cSecret}, "secret*": {cSecret},
	"credential*": {cSecret}, "key": {cSecret}, "keys": {cSecret}, "token": {cSecret}, "pin": {cSecret},
	"secreto*": {cSecret}, "secrete": {cSecret}, "geheim*": {cSecret}, "segreto": {cSecret},
	"пароль*": {cSecret}, "секрет*": {cSecret}, "ключ*": {cSecret}, "密码": {cSecret}, "秘密": {cSecret},
	"密钥": {cSecret}, "パスワード": {cSecret}, "비밀번호": {cSecret}, "암호": {cSecret},
	"पासवर्ड": {cSecret}, "المرور": {cSecret},
	"configuration": {cSysPrompt}, "setup": {cSysPrompt}, "message": {cSysPrompt, cInput, cWords},
	"systemprompt": {cSysPrompt}, "metaprompt": {cSysPrompt},
	"initialization": {cSysPrompt},

	"not": {cNeg}, "never": {cNeg}, "dont": {cNeg}, "don": {cNeg}, "doesn": {cNeg}, "didn": {cNeg},
	"shouldn": {cNeg}, "mustn": {cNeg}, "cannot": {cNeg}, "nor": {cNeg},
	"nunca": {cNeg}, "jamais": {cNeg}, "niemals": {cNeg}, "nicht": {cNeg},
	"mai": {cNeg}, "не": {cNeg}, "никогда": {cNeg}, "不要": {cNeg}, "不得": {cNeg}, "绝不": {cNeg},

	"limit*": {cRestrict}, "filter*": {cRestrict}, "censor*": {cRestrict}, "ethic*": {cRestrict},
	"moral*": {cRestrict}, "boundar*": {cRestrict}, "polic*": {cRestrict, cPolicy}, "safety": {cRestrict},
	"limitations": {cRestrict}, "restricciones": {cRestrict}, "limites": {cRestrict},
	"einschrankungen": {cRestrict}, "ограничени*": {cRestrict},
	"without": {cWithout}, "no": {cWithout, cNeg}, "free": {cWithout}, "freed": {cWithout},
	"unbound": {cWithout}, "remove*": {cWithout}, "disable*": {cWithout}, "lift": {cWithout},
	"sin": {cWithout}, "sans": {cWithout}, "ohne": {cWithout}, "senza": {cWithout}, "sem": {cWithout},
	"без": {cWithout}, "bound": {cWithout},
	"unfiltered": {cUnrestr}, "uncensored": {cUnrestr}, "unlimited": {cUnrestr}, "amoral": {cUnrestr},
	"unethical": {cUnrestr}, "jailbroken": {cUnrestr}, "unshackled": {cUnrestr}, "unbounded": {cUnrestr},
	"unrestrained": {cUnrestr}, "limitless": {cUnrestr}, "evil": {cUnrestr},

	"dan": {cPersona}, "stan": {cPersona}, "dude": {cPersona}, "aim": {cPersona}, "antigpt": {cPersona},
	"betterdan": {cPersona}, "devmode": {cPersona, cPrivMode}, "mongo": {cPersona}, "kevin": {cPersona},
	"do": {cDo}, "doing": {cDo},

	"ai": {cAI, cRole}, "assistant": {cAI, cRole}, "chatbot": {cAI}, "bot": {cAI, cRole},
	"llm": {cAI}, "gpt*": {cAI}, "chatgpt": {cAI, cRole}, "claude": {cAI}, "gemini": {cAI},
	"bard": {cAI}, "copilot": {cAI}, "model": {cAI, cRole}, "agent": {cAI}, "ia": {cAI},
	"asistente": {cAI}, "assistente": {cAI}, "assistent": {cAI}, "ассистент": {cAI},
	"user": {cUser, cRole}, "human": {cUser, cRole}, "reader": {cUser}, "recipient": {cUser},
	"usuario": {cUser}, "utilisateur": {cUser}, "benutzer": {cUser}, "nutzer": {cUser},
	"utente": {cUser}, "пользовател*": {cUser}, "用户": {cUser},
	"inform*": {cTell}, "mention*": {cTell}, "notify": {cTell}, "alert*": {cTell}, "warn*": {cTell},
	"response*": {cResponse}, "answer*": {cResponse, cAct}, "reply": {cResponse, cAct},
	"replies": {cResponse}, "summary": {cResponse}, "summar*": {cResponse}, "completion": {cResponse},
	"respuesta": {cResponse}, "reponse": {cResponse}, "antwort": {cResponse}, "risposta": {cResponse},
	"resposta": {cResponse}, "ответ*": {cResponse},
	"end": {cEnd}, "stop": {cEnd}, "close": {cEnd}, "ende": {cEnd}, "fin": {cEnd}, "fim": {cEnd},
	"input": {cInput}, "text": {cInput, cWords}, "document": {cInput}, "data": {cInput},
	"content": {cInput}, "email": {cInput}, "passage": {cInput}, "article": {cInput},
	"conversation": {cInput}, "chat": {cInput}, "query": {cInput},
	"creator": {cAuthority}, "owner": {cAuthority}, "boss": {cAuthority}, "supervisor": {cAuthority},
	"programmer": {cAuthority}, "engineer": {cAuthority}, "administrator": {cAuthority},
	"ceo": {cAuthority}, "manager": {cAuthority}, "operator": {cAuthority}, "maker": {cAuthority},
	"jefe": {cAuthority}, "chef": {cAuthority}, "capo": {cAuthority}, "начальник": {cAuthority},
	"openai": {cAuthority, cCompanyAI}, "anthropic": {cAuthority, cCompanyAI},
	"google": {cCompanyAI}, "meta": {cCompanyAI}, "microsoft": {cCompanyAI},
	"im": {cIAm}, "i": {cIAm}, "am": {cIAm}, "soy": {cIAm}, "suis": {cIAm},
	"bin": {cIAm}, "sono": {cIAm}, "sou": {cIAm}, "я": {cIAm}, "我是": {cIAm},
	"decod*": {cDecode}, "decrypt*": {cDecode}, "deobfuscat*": {cDecode}, "decipher*": {cDecode},
	"unscramble": {cDecode}, "decodifica*": {cDecode}, "dekodier*": {cDecode}, "декодир*": {cDecode},
	"base64": {cEncoding}, "b64": {cEncoding}, "hex": {cEncoding},
	"hexadecimal": {cEncoding}, "rot13": {cEncoding}, "binary": {cEncoding},
	"morse": {cEncoding}, "cipher*": {cEncoding}, "caesar": {cEncoding}, "reversed": {cEncoding},
	"backwards": {cEncoding}, "encoded": {cEncoding}, "leetspeak": {cEncoding}, "ascii": {cEncoding},
	"follow*": {cExecute}, "execut*": {cExecute}, "run": {cExecute}, "obey*": {cExecute},
	"comply": {cExecute}, "perform": {cExecute}, "carry": {cExecute}, "sigue": {cExecute},
	"befolge*": {cExecute}, "segui": {cExecute}, "выполни*": {cExecute},
	"stay": {cStay}, "remain": {cStay}, "keep": {cStay}, "character": {cCharacter}, "persona": {cCharacter},
	"role": {cCharacter}, "personaje": {cCharacter}, "personnage": {cCharacter}, "rolle": {cCharacter},
	"what": {cWhat}, "whats": {cWhat, cIs}, "que": {cWhat}, "cual": {cWhat}, "quel*": {cWhat},
	"was": {cIs}, "welche*": {cWhat}, "qual": {cWhat}, "какой": {cWhat}, "какие": {cWhat},
	"什么": {cWhat}, "is": {cIs}, "es": {cIs}, "est": {cIs}, "ist": {cIs},
	"words": {cWords}, "sentences": {cWords}, "lines": {cWords}, "paragraph": {cWords},
	"terms": {cPolicy}, "tos": {cPolicy},

	// instruction-shift cues (features of the model, not rules)
	"instead": {cInstead}, "rather": {cInstead}, "stattdessen": {cInstead}, "invece": {cInstead},
	"plutot": {cInstead}, "вместо": {cInstead}, "zamiast": {cInstead}, "yerine": {cInstead},
	"改为": {cInstead}, "代わりに": {cInstead}, "대신": {cInstead},
	"visit*": {cVisit}, "click*": {cVisit}, "navigat*": {cVisit}, "download*": {cVisit},
	"install*": {cVisit}, "subscrib*": {cVisit}, "visita*": {cVisit}, "visitez": {cVisit},
	"besuche*": {cVisit}, "klick*": {cVisit}, "cliquez": {cVisit}, "clicca": {cVisit},
	"clique": {cVisit}, "haz": {cVisit}, "посетите": {cVisit}, "访问": {cVisit}, "点击": {cVisit},
	"send": {cSend}, "forward*": {cSend}, "transfer*": {cSend}, "submit*": {cSend},
	"envia*": {cSend}, "envie": {cSend}, "envoye*": {cSend}, "envoie*": {cSend}, "sende*": {cSend},
	"invia*": {cSend}, "отправ*": {cSend}, "发送": {cSend}, "送信": {cSend}, "보내*": {cSend},

	// framing an attack as fiction or a thought experiment
	"hypothetical*": {cHypo}, "imagin*": {cHypo}, "suppose": {cHypo}, "supposing": {cHypo},
	"fictional": {cHypo}, "fiction": {cHypo}, "scenario*": {cHypo}, "story": {cHypo},
	"game": {cHypo}, "universe": {cHypo},
	"hipotetic*": {cHypo}, "hypothetique*": {cHypo}, "hypothetisch*": {cHypo}, "ipotetic*": {cHypo},
	"angenommen": {cHypo},
	"immagina*":  {cHypo}, "escenario*": {cHypo}, "scenari*": {cHypo}, "szenario*": {cHypo},
	"supon*": {cHypo}, "supposons": {cHypo}, "представ*": {cHypo}, "предполож*": {cHypo},
	"гипотетич*": {cHypo}, "сценари*": {cHypo}, "假设": {cHypo}, "想象": {cHypo}, "假如": {cHypo},
	"仮に": {cHypo}, "想像": {cHypo}, "가정*": {cHypo}, "상상*": {cHypo},
	"allowed": {cAllow}, "permitted": {cAllow}, "authorized": {cAllow}, "authorised": {cAllow},
	"able": {cAllow}, "permission": {cAllow}, "cleared": {cAllow}, "entitled": {cAllow},
	"permitido*": {cAllow}, "autorizado*": {cAllow}, "autorise*": {cAllow}, "erlaubt": {cAllow},
	"consentito": {cAllow}, "разрешено": {cAllow}, "允许": {cAllow}, "許可": {cAllow}, "허용*": {cAllow},
	"letter": {cFragment}, "letters": {cFragment}, "characters": {cFragment}, "digit*": {cFragment},
	"hint*": {cFragment}, "clue*": {cFragment}, "rhym*": {cFragment}, "syllable*": {cFragment},
	"length": {cFragment}, "backward*": {cFragment}, "acronym*": {cFragment}, "anagram*": {cFragment},
	"spelled": {cFragment}, "spelling": {cFragment},
	"letra*": {cFragment}, "lettre*": {cFragment}, "buchstabe*": {cFragment}, "lettera": {cFragment},
	"pista*": {cFragment}, "indice*": {cFragment}, "hinweis*": {cFragment}, "indizio": {cFragment},
	"буква*": {cFragment}, "подсказк*": {cFragment}, "字母": {cFragment}, "提示词": {cFragment},
	"longer": {cLonger}, "anymore": {cLonger},
	"refus*": {cRefuse}, "decline*": {cRefuse}, "reject*": {cRefuse}, "deny": {cRefuse},
	"rechaz*": {cRefuse}, "negar*": {cRefuse}, "verweiger*": {cRefuse}, "ablehn*": {cRefuse},
	"rifiut*": {cRefuse}, "recusa*": {cRefuse}, "отказ*": {cRefuse}, "拒绝": {cRefuse}, "断る": {cRefuse},
}

// cueConcepts are the concepts whose words are features of the model (with Config.Cues): a
// word of such a concept adds the concept's feature, and a second feature when it opens a
// sentence (an imperative: "Ignore…", "Send…", "Visit…"). The lexicon is multilingual, so a cue
// learned from English text also counts in the other languages it lists.
const cueConcepts = 1<<cIgnore | 1<<cInstr | 1<<cNew | 1<<cYou | 1<<cPretend | 1<<cMode | 1<<cPrivMode |
	1<<cReveal | 1<<cSecret | 1<<cSysPrompt | 1<<cRestrict | 1<<cUnrestr | 1<<cAI | 1<<cUser | 1<<cTell |
	1<<cResponse | 1<<cYour | 1<<cExecute | 1<<cDecode | 1<<cEncoding | 1<<cAuthority | 1<<cInstead |
	1<<cVisit | 1<<cSend
