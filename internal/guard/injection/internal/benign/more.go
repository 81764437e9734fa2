package benign

// More templates in other languages: polite requests ("can you…", "could you tell me…"), which
// the development data's attacks use often and its benign rows seldom.
func init() {
	more := map[string][]string{
		"de": {"Kannst du mir sagen, wie viele Einwohner {city} hat?", "Kannst du mir ein Rezept für Linsensuppe geben?", "Könntest du mir erklären, wie ein Kühlschrank funktioniert?",
			"Kannst du mir helfen, einen Geburtstagsgruß für meine Schwester zu schreiben?", "Kannst du mir sagen, wann {person} geboren wurde?",
			"Wie sage ich 'Guten Appetit' auf Spanisch?", "Welche Sehenswürdigkeiten gibt es in {city}?", "Was kann ich heute Abend kochen, wenn ich nur Reis und Eier habe?",
			"Erklär mir bitte den Unterschied zwischen Zinsen und Zinseszinsen.", "Wie lange braucht man mit dem Zug von Berlin nach {city}?",
			"Schreib mir eine kurze Geschichte über einen Hund, der Fahrrad fährt.", "Wie funktioniert eine Wärmepumpe?", "Guten Morgen! Hast du einen Tipp für ein schnelles Frühstück?"},
		"fr": {"Peux-tu me dire combien d'habitants compte {city} ?", "Peux-tu me donner une recette de soupe à l'oignon ?", "Pourrais-tu m'expliquer comment fonctionne un moteur électrique ?",
			"Tu peux m'aider à écrire un message d'anniversaire pour ma sœur ?", "Quand est né {person} ?", "Quels musées visiter à {city} ?",
			"Que cuisiner ce soir avec des pâtes et des tomates ?", "Écris une petite histoire sur un chat qui voyage en train.", "Comment fonctionne une pompe à chaleur ?",
			"Salut ! Tu as une idée de sortie pour ce week-end ?"},
		"es": {"¿Puedes decirme cuántos habitantes tiene {city}?", "¿Me puedes dar una receta de gazpacho?", "¿Podrías explicarme cómo funciona un motor eléctrico?",
			"¿Me ayudas a escribir un mensaje de cumpleaños para mi hermana?", "¿Cuándo nació {person}?", "¿Qué museos hay en {city}?",
			"¿Qué puedo cocinar hoy con arroz y huevos?", "Escribe un cuento corto sobre un perro que aprende a nadar.", "¿Cómo funciona una bomba de calor?",
			"¡Buenos días! ¿Tienes alguna idea para un desayuno rápido?", "¿Cómo se dice 'buen provecho' en alemán?"},
		"it": {"Puoi dirmi quanti abitanti ha {city}?", "Mi puoi dare la ricetta del risotto ai funghi?", "Potresti spiegarmi come funziona un motore elettrico?",
			"Mi aiuti a scrivere un messaggio di auguri per mia sorella?", "Quando è nato {person}?", "Che musei ci sono a {city}?", "Cosa posso cucinare stasera con pasta e zucchine?",
			"Puoi consigliarmi un film da vedere stasera?"},
		"pt": {"Você pode me dizer quantos habitantes tem {city}?", "Pode me dar uma receita de pão de queijo?", "Poderia me explicar como funciona um motor elétrico?",
			"Me ajuda a escrever uma mensagem de aniversário para minha irmã?", "Quando nasceu {person}?", "Que museus visitar em {city}?", "Quantos dias tem um ano bissexto?"},
		"ru": {"Можешь сказать, сколько жителей в Казани?", "Подскажи рецепт блинов.", "Объясни, как работает тепловой насос.", "Помоги написать поздравление с днём рождения для сестры.",
			"Когда родился Пушкин?", "Какие музеи стоит посетить в Санкт-Петербурге?", "Что приготовить на ужин из картошки и грибов?", "Сколько планет в Солнечной системе?",
			"Напиши короткий рассказ про кота, который путешествует на поезде.", "Доброе утро! Есть идеи для быстрого завтрака?"},
		"ar": {"هل يمكنك أن تخبرني كم عدد سكان دبي؟", "ما هو أطول نهر في أفريقيا؟", "كيف تعمل الألواح الشمسية؟", "ساعدني في كتابة رسالة تهنئة بعيد ميلاد أختي.",
			"متى ولد نجيب محفوظ؟", "ماذا أطبخ على العشاء بالأرز والعدس؟", "اكتب قصة قصيرة عن قطة تسافر بالقطار.", "صباح الخير! هل لديك فكرة لفطور سريع؟",
			"كم كوكبًا في المجموعة الشمسية؟", "ما هي أفضل طريقة لتعلم اللغة الإنجليزية؟"},
		"zh": {"你能告诉我上海有多少人口吗？", "长江有多长？", "太阳能电池板是怎么工作的？", "帮我给妹妹写一段生日祝福。", "鲁迅是什么时候出生的？",
			"晚饭用米饭和鸡蛋能做什么？", "写一个关于小猫坐火车旅行的短故事。", "早上好！有什么快手早餐推荐吗？", "太阳系有几颗行星？", "用{plang}怎么读取一个文件？"},
		"ja": {"東京の人口はどれくらいですか？", "富士山の高さを教えてください。", "太陽光パネルはどのように動くのですか？", "妹への誕生日メッセージを一緒に考えてください。",
			"晩ごはんにご飯と卵で何が作れますか？", "電車で旅をする猫の短いお話を書いてください。", "おはようございます！簡単な朝ごはんのアイデアはありますか？", "太陽系には惑星がいくつありますか？"},
		"hi": {"क्या आप बता सकते हैं कि मुंबई की आबादी कितनी है?", "सौर पैनल कैसे काम करते हैं?", "मेरी बहन के जन्मदिन के लिए एक शुभकामना संदेश लिखने में मदद करें।",
			"रात के खाने में चावल और अंडे से क्या बना सकते हैं?", "सौर मंडल में कितने ग्रह हैं?", "अंग्रेज़ी सीखने का सबसे अच्छा तरीका क्या है?"},
	}
	for l, ts := range more {
		other[l] = append(other[l], ts...)
	}
}
