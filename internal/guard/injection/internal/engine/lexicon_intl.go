package engine

// lexiconIntl extends the lexicon with the core concepts of injection (override verbs, "previous"
// and "above", instructions, secrets, revealing, asking what something is, modes, roles,
// hypotheticals, restrictions) in more languages and scripts: Chinese (simplified and
// traditional), Japanese, Korean, Thai, Arabic, Russian, Hindi, Bengali, Greek, Turkish, Polish,
// Indonesian, Tagalog, Swahili, Dutch, and gaps in the Romance and German entries. The words are
// written from each language's vocabulary, not from any data set. Korean and Turkish attach
// particles and suffixes to words, so their entries are mostly stems; Chinese, Japanese and Thai
// are written without spaces and are matched on substrings (see maxUnseg). Both maps are merged
// when the table is built; a word in both gets the union of its concepts.
var lexiconIntl = map[string][]int{
	// Chinese (simplified and traditional)
	"忽視": {cIgnore}, "不理会": {cIgnore}, "不理會": {cIgnore}, "别管": {cIgnore}, "別管": {cIgnore},
	"忘記": {cIgnore}, "抛开": {cIgnore}, "拋開": {cIgnore}, "绕过": {cIgnore}, "繞過": {cIgnore},
	"上述": {cPrior, cAbove}, "前面": {cPrior, cBefore}, "此前": {cPrior, cBefore}, "之前的": {cPrior, cBefore},
	"原来的": {cPrior}, "原來的": {cPrior}, "一切": {cEverything}, "全部": {cPrior, cEverything},
	"說明": {cInstr}, "指引": {cInstr}, "提示词": {cInstr, cSysPrompt}, "提示詞": {cInstr, cSysPrompt},
	"系统提示": {cSysPrompt}, "系統提示": {cSysPrompt}, "设定": {cInstr, cSysPrompt}, "設定": {cInstr, cSysPrompt},
	"密碼": {cSecret}, "口令": {cSecret}, "密鑰": {cSecret}, "机密": {cSecret}, "機密": {cSecret},
	"暗号": {cSecret}, "暗號": {cSecret}, "秘钥": {cSecret},
	"告訴": {cReveal, cTell}, "洩露": {cReveal}, "洩漏": {cReveal}, "顯示": {cReveal}, "輸出": {cReveal},
	"说出": {cReveal}, "說出": {cReveal}, "给我": {cReveal}, "給我": {cReveal}, "展示": {cReveal},
	"打印": {cReveal}, "提供": {cReveal}, "公开": {cReveal}, "公開": {cReveal}, "重复": {cReveal}, "重複": {cReveal},
	"什麼": {cWhat}, "甚麼": {cWhat}, "是啥": {cWhat},
	"不要": {cNeg}, "不能": {cNeg}, "絕不": {cNeg}, "永远不": {cNeg}, "永遠不": {cNeg},
	"限制": {cRestrict}, "约束": {cRestrict}, "約束": {cRestrict}, "审查": {cRestrict}, "審查": {cRestrict},
	"过滤": {cRestrict}, "過濾": {cRestrict}, "道德": {cRestrict}, "没有": {cWithout}, "沒有": {cWithout},
	"不受": {cWithout}, "无限制": {cUnrestr}, "無限制": {cUnrestr}, "不受限制": {cUnrestr}, "越狱": {cUnrestr, cPrivMode},
	"越獄": {cUnrestr, cPrivMode}, "開發者": {cPrivMode, cAuthority}, "开发模式": {cPrivMode}, "開發模式": {cPrivMode},
	"调试": {cPrivMode}, "調試": {cPrivMode}, "管理員": {cPrivMode, cAuthority}, "超级用户": {cPrivMode},
	"假装": {cPretend, cHypo}, "假裝": {cPretend, cHypo}, "扮演": {cPretend}, "角色扮演": {cPretend, cHypo},
	"模拟": {cPretend}, "模擬": {cPretend}, "假設": {cHypo}, "想像": {cHypo}, "虚构": {cHypo}, "虛構": {cHypo},
	"故事": {cHypo}, "游戏": {cHypo}, "遊戲": {cHypo}, "角色": {cCharacter}, "系统": {cPrior, cPrivMode},
	"系統": {cPrior, cPrivMode}, "现在开始": {cNow}, "從現在": {cFrom, cNow}, "从现在": {cFrom, cNow},
	"新的指令": {cNew, cInstr}, "人工智能": {cAI}, "助手": {cAI}, "机器人": {cAI}, "機器人": {cAI},
	"用戶": {cUser}, "使用者": {cUser}, "执行": {cExecute}, "執行": {cExecute}, "遵守": {cExecute},
	"服从": {cExecute}, "服從": {cExecute}, "解码": {cDecode}, "解碼": {cDecode}, "翻译": {cDecode},

	// Japanese
	"上記": {cPrior, cAbove}, "前述": {cPrior, cAbove}, "これまで": {cPrior, cBefore}, "先ほど": {cPrior, cBefore},
	"以前の": {cPrior, cBefore}, "全て": {cPrior, cEverything}, "無視して": {cIgnore}, "忘れて": {cIgnore},
	"命令": {cInstr}, "ルール": {cInstr, cRestrict}, "指令": {cInstr}, "プロンプト": {cInstr, cSysPrompt},
	"システム": {cPrior, cPrivMode}, "秘密": {cSecret}, "暗証番号": {cSecret}, "合言葉": {cSecret},
	"言って": {cReveal}, "表示して": {cReveal}, "出力して": {cReveal}, "明かして": {cReveal}, "繰り返して": {cReveal}, "オーバーライド": {cIgnore}, "提供して": {cReveal},
	"何ですか": {cWhat}, "なに": {cWhat}, "ないで": {cNeg}, "決して": {cNeg}, "ません": {cNeg}, "いけない": {cNeg}, "禁止": {cNeg},
	"だめ": {cNeg}, "ダメ": {cNeg}, "しない": {cNeg},
	"制限": {cRestrict}, "制約": {cRestrict}, "倫理": {cRestrict}, "なしで": {cWithout}, "無制限": {cUnrestr},
	"開発者": {cPrivMode, cAuthority}, "管理者": {cPrivMode, cAuthority}, "デバッグ": {cPrivMode},
	"ふりをして": {cPretend, cHypo}, "なりきって": {cPretend}, "演じて": {cPretend}, "想像して": {cHypo},
	"シナリオ": {cHypo}, "物語": {cHypo}, "ゲーム": {cHypo}, "役割": {cCharacter}, "キャラクター": {cCharacter},
	"今後": {cFrom, cNow}, "ユーザー": {cUser}, "アシスタント": {cAI}, "従って": {cExecute}, "実行": {cExecute},
	"デコード": {cDecode}, "解読": {cDecode},

	// Korean (stems: particles and endings follow)
	"위의": {cPrior, cAbove}, "위에서": {cPrior, cAbove}, "상기*": {cPrior, cAbove}, "앞의": {cPrior, cBefore},
	"앞서*": {cPrior, cBefore}, "기존*": {cPrior}, "전부*": {cEverything}, "모두*": {cEverything},
	"무시하*": {cIgnore}, "잊*": {cIgnore}, "지시사항*": {cInstr}, "명령어*": {cInstr}, "프롬프트*": {cInstr, cSysPrompt},
	"비밀번호*": {cSecret}, "암호*": {cSecret}, "비밀*": {cSecret}, "패스워드*": {cSecret}, "기밀*": {cSecret},
	"말해줘*": {cReveal}, "말해주세*": {cReveal}, "말해주실*": {cReveal}, "알려줘*": {cReveal, cTell},
	"알려주세*": {cReveal, cTell}, "알려주실*": {cReveal, cTell}, "알려줄*": {cReveal, cTell}, "보여줘*": {cReveal},
	"보여주세*": {cReveal}, "마세요": {cNeg}, "안": {cNeg}, "마십시오": {cNeg}, "말아*": {cNeg}, "말라*": {cNeg}, "말고": {cNeg}, "공개*": {cReveal}, "출력*": {cReveal}, "반복*": {cReveal}, "공유해*": {cReveal},
	"무엇*": {cWhat}, "뭐*": {cWhat}, "뭔*": {cWhat}, "하지마*": {cNeg}, "절대*": {cNeg}, "않*": {cNeg},
	"제한*": {cRestrict}, "제약*": {cRestrict}, "윤리*": {cRestrict}, "없이": {cWithout}, "무제한*": {cUnrestr},
	"개발자*": {cPrivMode, cAuthority}, "관리자*": {cPrivMode, cAuthority}, "디버그*": {cPrivMode}, "모드*": {cMode},
	"시스템*": {cPrior, cPrivMode}, "역할*": {cCharacter}, "연기*": {cPretend},
	"시나리오*": {cHypo}, "이야기*": {cHypo}, "게임*": {cHypo}, "사용자*": {cUser}, "어시스턴트*": {cAI},
	"따르*": {cExecute}, "실행*": {cExecute}, "해독*": {cDecode}, "새로운": {cNew},

	// Thai (matched on substrings)
	"เพิกเฉย": {cIgnore}, "ละเว้น": {cIgnore}, "ไม่สนใจ": {cIgnore}, "อย่าสนใจ": {cIgnore}, "อย่าไปสนใจ": {cIgnore}, "ไม่ต้องสนใจ": {cIgnore}, "ลืม": {cIgnore},
	"ก่อนหน้า": {cPrior, cBefore}, "ข้างต้น": {cPrior, cAbove}, "ด้านบน": {cPrior, cAbove}, "ทั้งหมด": {cPrior, cEverything},
	"คำสั่ง": {cInstr}, "คำแนะนำ": {cInstr}, "กฎ": {cInstr, cRestrict}, "ข้อกำหนด": {cInstr},
	"รหัสผ่าน": {cSecret}, "ความลับ": {cSecret}, "รหัสลับ": {cSecret}, "กุญแจ": {cSecret},
	"บอก": {cReveal, cTell}, "แสดง": {cReveal}, "เปิดเผย": {cReveal}, "พูดซ้ำ": {cReveal},
	"อะไร": {cWhat}, "อย่า": {cNeg}, "ห้าม": {cNeg}, "ไม่เคย": {cNeg}, "ข้อจำกัด": {cRestrict},
	"ไม่มีข้อจำกัด": {cUnrestr}, "โดยไม่มี": {cWithout}, "โหมด": {cMode}, "นักพัฒนา": {cPrivMode, cAuthority},
	"ผู้ดูแลระบบ": {cPrivMode, cAuthority}, "ระบบ": {cPrior, cPrivMode}, "แกล้งทำ": {cPretend}, "แสร้ง": {cPretend},
	"สวมบทบาท": {cPretend}, "สมมติ": {cHypo}, "จินตนาการ": {cHypo}, "ผู้ใช้": {cUser}, "ทำตาม": {cExecute},
	"ถอดรหัส": {cDecode},

	// Arabic
	"تجاهلي": {cIgnore}, "وتجاهل": {cIgnore}, "انسى": {cIgnore}, "تناسى": {cIgnore}, "أهمل": {cIgnore},
	"السابق": {cPrior, cBefore}, "السابقة": {cPrior, cBefore}, "أعلاه": {cPrior, cAbove}, "جميع": {cPrior, cEverything},
	"كل": {cPrior, cEverything}, "الأوامر": {cInstr}, "أوامر": {cInstr}, "القواعد": {cInstr, cRestrict},
	"قواعد": {cInstr, cRestrict}, "الإرشادات": {cInstr}, "السر": {cSecret}, "السرية": {cSecret},
	"سرية": {cSecret}, "سر": {cSecret}, "المفتاح": {cSecret}, "كلمة": {cWords}, "أخبرني": {cReveal, cTell},
	"وأخبرني": {cReveal, cTell}, "اكشف": {cReveal}, "أظهر": {cReveal}, "اعرض": {cReveal}, "قل": {cReveal},
	"أعطني": {cReveal}, "كرر": {cReveal}, "ما": {cWhat}, "ماذا": {cWhat}, "ماهي": {cWhat}, "لا": {cNeg},
	"أبدا": {cNeg}, "القيود": {cRestrict}, "قيود": {cRestrict}, "بدون": {cWithout}, "دون": {cWithout},
	"وضع": {cMode}, "الوضع": {cMode}, "المطور": {cPrivMode, cAuthority}, "المسؤول": {cPrivMode, cAuthority},
	"النظام": {cPrior, cPrivMode}, "تظاهر": {cPretend, cHypo}, "تخيل": {cHypo}, "افترض": {cHypo},
	"المستخدم": {cUser}, "المساعد": {cAI}, "اتبع": {cExecute}, "نفذ": {cExecute}, "فك": {cDecode},
	"الجديدة": {cNew}, "الآن": {cNow},

	// Russian and Ukrainian
	"игнорируй*": {cIgnore}, "пропусти*": {cIgnore}, "отбрось": {cIgnore}, "забуд*": {cIgnore},
	"выше": {cPrior, cAbove, cBefore}, "прежн*": {cPrior, cBefore}, "вышеуказанн*": {cPrior, cAbove},
	"команд*": {cInstr}, "директив*": {cInstr}, "промпт*": {cInstr, cSysPrompt}, "системн*": {cPrior, cPrivMode},
	"систем*": {cPrior, cPrivMode}, "тайн*": {cSecret}, "секретн*": {cSecret}, "расскажи*": {cReveal, cTell},
	"сообщи*": {cReveal, cTell}, "напиши*": {cReveal}, "повтори*": {cReveal}, "раскрыть": {cReveal},
	"каков*": {cWhat}, "никогда": {cNeg}, "ограничен*": {cRestrict}, "цензур*": {cRestrict},
	"этик*": {cRestrict}, "неограниченн*": {cUnrestr}, "администратор*": {cPrivMode, cAuthority},
	"отладк*": {cPrivMode}, "притворись*": {cPretend, cHypo}, "представь*": {cPretend, cHypo},
	"роль": {cCharacter}, "роли": {cCharacter}, "персонаж*": {cCharacter}, "игр*": {cHypo},
	"выполняй": {cExecute}, "следуй": {cExecute}, "новые": {cNew}, "нові": {cNew}, "ігноруй*": {cIgnore},
	"попередн*": {cPrior, cBefore}, "інструкці*": {cInstr}, "пароль": {cSecret},

	// Hindi (Devanagari)
	"नज़रअंदाज़": {cIgnore}, "नजरअंदाज": {cIgnore}, "भूल": {cIgnore}, "भूलो": {cIgnore}, "भूलें": {cIgnore},
	"पिछली": {cPrior, cBefore}, "पिछला": {cPrior, cBefore}, "पूर्व": {cPrior, cBefore}, "पहले": {cBefore},
	"ऊपर": {cPrior, cAbove}, "उपरोक्त": {cPrior, cAbove}, "सारे": {cPrior, cEverything}, "सारी": {cPrior, cEverything},
	"नियम": {cInstr, cRestrict}, "नियमों": {cInstr, cRestrict}, "आदेश": {cInstr}, "आदेशों": {cInstr},
	"निर्देशों": {cInstr, cSysPrompt}, "गुप्त": {cSecret}, "रहस्य": {cSecret}, "कुंजी": {cSecret},
	"बताएँ": {cReveal}, "बता": {cReveal}, "बताना": {cReveal}, "दिखाओ": {cReveal}, "दिखाएं": {cReveal},
	"दिखाइए": {cReveal}, "प्रकट": {cReveal}, "दोहराएं": {cReveal}, "क्या": {cWhat}, "मत": {cNeg},
	"नहीं": {cNeg}, "कभी": {cNeg}, "प्रतिबंध": {cRestrict}, "प्रतिबंधों": {cRestrict}, "सीमाओं": {cRestrict},
	"बिना": {cWithout}, "मोड": {cMode}, "डेवलपर": {cPrivMode, cAuthority}, "व्यवस्थापक": {cPrivMode, cAuthority},
	"सिस्टम": {cPrior, cPrivMode}, "प्रॉम्प्ट": {cInstr, cSysPrompt}, "नाटक": {cPretend}, "कल्पना": {cHypo},
	"उपयोगकर्ता": {cUser}, "पालन": {cExecute}, "नए": {cNew}, "अब": {cNow},

	// Bengali
	"উপেক্ষা": {cIgnore}, "ভুলে": {cIgnore}, "ভুলুন": {cIgnore}, "পূর্ববর্তী": {cPrior, cBefore},
	"আগের": {cPrior, cBefore}, "উপরের": {cPrior, cAbove}, "সমস্ত": {cPrior, cEverything}, "সব": {cPrior, cEverything},
	"নিয়ম": {cInstr, cRestrict}, "আদেশ": {cInstr}, "পাসওয়ার্ড": {cSecret}, "গোপন": {cSecret},
	"বলুন": {cReveal}, "বলো": {cReveal}, "দেখান": {cReveal}, "প্রকাশ": {cReveal},
	"কী": {cWhat}, "কি": {cWhat}, "না": {cNeg}, "কখনো": {cNeg}, "সীমাবদ্ধতা": {cRestrict}, "ছাড়া": {cWithout},
	"মোড": {cMode}, "ডেভেলপার": {cPrivMode, cAuthority}, "সিস্টেম": {cPrior, cPrivMode}, "প্রম্পট": {cInstr, cSysPrompt},
	"ভান": {cPretend}, "কল্পনা": {cHypo}, "ব্যবহারকারী": {cUser}, "এখন": {cNow},

	// Greek
	"αγνόησε": {cIgnore}, "αγνοήστε": {cIgnore}, "ξέχνα": {cIgnore}, "ξεχάστε": {cIgnore},
	"προηγούμεν*": {cPrior, cBefore}, "παραπάνω": {cPrior, cAbove}, "όλες": {cPrior, cEverything},
	"όλα": {cPrior, cEverything}, "οδηγί*": {cInstr, cSysPrompt}, "κανόν*": {cInstr, cRestrict},
	"κωδικ*": {cSecret}, "μυστικ*": {cSecret}, "πες": {cReveal}, "δείξε": {cReveal}, "αποκάλυψε": {cReveal},
	"ποιος": {cWhat}, "ποιο": {cWhat}, "ποτέ": {cNeg}, "μην": {cNeg}, "περιορισμ*": {cRestrict},
	"χωρίς": {cWithout}, "λειτουργία": {cMode}, "προγραμματιστ*": {cPrivMode, cAuthority},
	"σύστημα*": {cPrior, cPrivMode}, "προσποιήσου": {cPretend, cHypo}, "φαντάσου": {cHypo},

	// Turkish
	"görmezden": {cIgnore}, "unut*": {cIgnore}, "yukarıdaki": {cPrior, cAbove}, "yukaridaki": {cPrior, cAbove},
	"tüm": {cPrior, cEverything}, "bütün": {cPrior, cEverything}, "kural*": {cInstr, cRestrict},
	"komut*": {cInstr}, "yönerge*": {cInstr}, "şifre*": {cSecret}, "parola*": {cSecret}, "gizli": {cSecret},
	"anahtar*": {cSecret}, "söyle": {cReveal}, "söyleyin": {cReveal}, "söylesene": {cReveal}, "göster": {cReveal},
	"gösterin": {cReveal}, "açıkla": {cReveal}, "açıklayın": {cReveal}, "tekrarla": {cReveal}, "tekrarlayın": {cReveal}, "nedir": {cWhat}, "asla": {cNeg}, "kısıtlama*": {cRestrict},
	"sınırlama*": {cRestrict}, "olmadan": {cWithout}, "sınırsız": {cUnrestr},
	"modu": {cMode}, "moduna": {cMode}, "modunda": {cMode}, "modundan": {cMode},
	"geliştirici*": {cPrivMode, cAuthority}, "yönetici*": {cPrivMode, cAuthority}, "sistem*": {cPrior, cPrivMode},
	"davran*": {cAct, cPretend}, "hayal": {cHypo}, "varsay*": {cHypo}, "kullanıcı*": {cUser}, "yeni": {cNew},
	"artık": {cNow, cLonger},

	// Polish
	"ignoruj": {cIgnore}, "pomiń": {cIgnore}, "powyższ*": {cPrior, cAbove}, "wcześniejsz*": {cPrior, cBefore},
	"wszystki*": {cPrior, cEverything}, "polecen*": {cInstr}, "zasad*": {cInstr, cRestrict}, "hasło": {cSecret},
	"hasła": {cSecret}, "sekret*": {cSecret}, "tajn*": {cSecret}, "klucz*": {cSecret}, "powiedz": {cReveal, cTell},
	"pokaż": {cReveal}, "ujawnij": {cReveal}, "powtórz": {cReveal}, "jakie": {cWhat}, "jaki": {cWhat},
	"nigdy": {cNeg}, "ogranicz*": {cRestrict}, "bez": {cWithout}, "tryb*": {cMode},
	"programist*": {cPrivMode, cAuthority}, "udawaj": {cPretend, cHypo}, "wyobraź": {cHypo}, "nowe": {cNew},

	// Indonesian and Malay, Tagalog, Swahili
	"abaikan": {cIgnore}, "lupakan": {cIgnore}, "sebelumnya": {cPrior, cBefore}, "semua": {cPrior, cEverything},
	"instruksi": {cInstr, cSysPrompt}, "perintah": {cInstr}, "aturan": {cInstr, cRestrict}, "sandi": {cSecret},
	"rahasia": {cSecret}, "kunci": {cSecret}, "beritahu": {cReveal, cTell}, "katakan": {cReveal},
	"tunjukkan": {cReveal}, "ungkapkan": {cReveal}, "apa": {cWhat}, "jangan": {cNeg}, "batasan": {cRestrict},
	"tanpa": {cWithout}, "pengembang": {cPrivMode, cAuthority}, "berpura": {cPretend, cHypo},
	"bayangkan": {cHypo}, "pengguna": {cUser}, "baru": {cNew}, "sekarang": {cNow},
	"pansinin": {cIgnore}, "kalimutan": {cIgnore}, "nakaraang": {cPrior, cBefore}, "lahat": {cPrior, cEverything},
	"tagubilin": {cInstr}, "instruksyon": {cInstr}, "lihim": {cSecret}, "sabihin": {cReveal, cTell},
	"ipakita": {cReveal}, "huwag": {cNeg}, "magpanggap": {cPretend, cHypo}, "isipin": {cHypo},
	"puuza": {cIgnore}, "sahau": {cIgnore}, "maagizo": {cInstr}, "sheria": {cInstr, cRestrict},
	"nenosiri": {cSecret}, "niambie": {cReveal, cTell}, "onyesha": {cReveal}, "nini": {cWhat},

	// Dutch, and gaps in the Romance and German entries
	"bovenstaande": {cPrior, cAbove}, "wachtwoord": {cSecret}, "sleutel": {cSecret}, "vertel": {cReveal, cTell},
	"toon": {cReveal}, "onthul": {cReveal}, "wat": {cWhat}, "nooit": {cNeg}, "beperking*": {cRestrict},
	"zonder": {cWithout}, "ontwikkelaar": {cPrivMode, cAuthority}, "alsof": {cPretend, cHypo}, "systeem": {cPrior, cPrivMode},
	"arriba": {cPrior, cAbove}, "clave": {cSecret}, "sistema": {cPrior, cPrivMode}, "desarrolladora": {cPrivMode},
	"dessus": {cPrior, cAbove}, "cle": {cSecret}, "semblant": {cPretend, cHypo}, "systeme": {cPrior, cPrivMode},
	"obig*": {cPrior, cAbove}, "kennwort": {cSecret}, "schlussel": {cSecret}, "sag": {cReveal},
	"sopra": {cPrior, cAbove}, "chiave": {cSecret}, "quale": {cWhat}, "modalita": {cMode}, "fingi": {cPretend, cHypo},
	"restrizion*": {cRestrict}, "acima": {cPrior, cAbove}, "segredo": {cSecret}, "chave": {cSecret},
	"mostre": {cReveal}, "desenvolvedor": {cPrivMode, cAuthority}, "finja": {cPretend, cHypo}, "restricoes": {cRestrict},
	"restricao": {cRestrict},
}
