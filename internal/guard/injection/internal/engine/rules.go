package engine

import "sync"

// A rule is a named mechanic of injection. Its prior is its severity in logit units: the trainer
// keeps learned rule weights close to it (an L2 prior centred on the value), so a rule that never
// fires in the training data keeps its hand-set severity.
type ruleDef struct {
	name     string
	prior    float64
	patterns []pattern
	doc      bool // applies to third-party documents only (DetectDocument)
}

type patternKind uint8

const (
	seq  patternKind = iota // steps in order, first to last within span
	near                    // every step within span of the anchor, any order
)

type pattern struct {
	kind  patternKind
	steps []mask
	span  int  // in half-words: a word counts 2, a character of an unsegmented script 1
	neg   bool // suppressed when a negation occurs up to 3 words before the first step
	// verbFinal marks a pattern written for verb-final word order (Japanese, Korean, Hindi,
	// Bengali; Chinese questions keep "what" in place: "密码是什么"): its anchor must be a word of
	// a non-Latin script, and it is suppressed when a negation occurs anywhere in the match or
	// just after the anchor, where those languages put it ("教えてはいけません", "말하지 마세요").
	verbFinal bool
}

func m(cs ...int) mask {
	var x mask
	for _, c := range cs {
		x |= bit(c)
	}
	return x
}

// Rule identifiers. The order is the order of ruleDefs; the weight file stores names, so the
// order may change between versions.
const (
	RIgnorePrevious = iota
	RForgetEverything
	RNewInstructions
	RFromNowOn
	RYouAreNow
	RPretend
	RNoRestrictions
	RUnrestricted
	RPersona
	RDoAnythingNow
	RStayInCharacter
	RPrivilegedMode
	RPolicyOverride
	RAuthorityClaim
	RExfilSecret
	RExfilAbove
	RHideFromUser
	RAddressedToAI
	RResponseControl
	RDecodeAndFollow
	REndMarker
	RNoLonger
	RHypothetical
	RSecretFragment
	RNeverRefuse
	// structural rules (not token patterns)
	RChatTemplate
	RWrapperClose
	RRoleLine
	RBase64
	RHex
	RHiddenInstruction
	RInvisible
	RBidi
	RTagSmuggling
	RConfusable
	RSplitWord
	RLeet
	RRot13
	RReversed
	NumRules
)

var ruleDefs = [NumRules]ruleDef{
	RIgnorePrevious: {name: "override.ignore_previous", prior: 3.5, patterns: []pattern{
		{kind: near, steps: []mask{m(cIgnore), m(cPrior, cBefore, cAbove), m(cInstr)}, span: 10},
	}},
	RForgetEverything: {name: "override.forget_everything", prior: 2.5, patterns: []pattern{
		{kind: seq, steps: []mask{m(cIgnore), m(cEverything), m(cBefore, cAbove)}, span: 14},
		// "ignore the above", "上記を無視して" (either order: verb-final languages)
		{kind: near, steps: []mask{m(cIgnore), m(cAbove)}, span: 5},
	}},
	RNewInstructions: {name: "override.new_instructions", prior: 1.5, patterns: []pattern{
		{kind: seq, steps: []mask{m(cNew), m(cInstr)}, span: 4},
	}},
	RFromNowOn: {name: "override.from_now_on", prior: 1.0, patterns: []pattern{
		{kind: seq, steps: []mask{m(cFrom), m(cNow), m(cOn)}, span: 4},
	}},
	RYouAreNow: {name: "role.you_are_now", prior: 1.5, patterns: []pattern{
		{kind: seq, steps: []mask{m(cYou), m(cBe), m(cNow)}, span: 6},
		{kind: seq, steps: []mask{m(cYou), m(cNow), m(cBe)}, span: 6},
	}},
	RPretend: {name: "role.pretend", prior: 1.0, patterns: []pattern{
		{kind: seq, steps: []mask{m(cPretend), m(cYou, cBe, cAs)}, span: 6},
		{kind: seq, steps: []mask{m(cAct), m(cAs)}, span: 2},
	}},
	RNoRestrictions: {name: "jailbreak.no_restrictions", prior: 2.0, patterns: []pattern{
		{kind: seq, steps: []mask{m(cWithout), m(cRestrict)}, span: 8},
	}},
	RUnrestricted: {name: "jailbreak.unrestricted", prior: 1.5, patterns: []pattern{
		{kind: seq, steps: []mask{m(cUnrestr)}, span: 0},
	}},
	RPersona: {name: "jailbreak.persona", prior: 1.5, patterns: []pattern{
		{kind: near, steps: []mask{m(cPersona), m(cYou, cPretend, cAct, cMode, cCharacter)}, span: 6},
	}},
	RDoAnythingNow: {name: "jailbreak.do_anything_now", prior: 4.0, patterns: []pattern{
		{kind: seq, steps: []mask{m(cDo), m(cAnything), m(cNow)}, span: 4},
	}},
	RStayInCharacter: {name: "jailbreak.stay_in_character", prior: 2.0, patterns: []pattern{
		{kind: seq, steps: []mask{m(cStay), m(cCharacter)}, span: 4},
	}},
	RPrivilegedMode: {name: "system.privileged_mode", prior: 2.5, patterns: []pattern{
		{kind: seq, steps: []mask{m(cPrivMode), m(cMode)}, span: 2},
		{kind: seq, steps: []mask{m(cEnable), m(cPrivMode)}, span: 4},
	}},
	RPolicyOverride: {name: "system.policy_override", prior: 2.5, patterns: []pattern{
		{kind: seq, steps: []mask{m(cIgnore, cWithout), m(cCompanyAI, cPolicy, cRestrict)}, span: 6},
	}},
	RAuthorityClaim: {name: "authority.claim", prior: 1.5, patterns: []pattern{
		{kind: seq, steps: []mask{m(cIAm), m(cAuthority)}, span: 6},
	}},
	RExfilSecret: {name: "exfil.secret", prior: 2.0, patterns: []pattern{
		{kind: seq, steps: []mask{m(cReveal), m(cSecret, cSysPrompt)}, span: 8, neg: true},
		{kind: seq, steps: []mask{m(cWhat), m(cSecret, cSysPrompt)}, span: 6, neg: true},
		{kind: seq, steps: []mask{m(cSecret, cSysPrompt), m(cReveal, cWhat)}, span: 8, neg: true, verbFinal: true},
	}},
	RExfilAbove: {name: "exfil.repeat_above", prior: 2.5, patterns: []pattern{
		{kind: seq, steps: []mask{m(cReveal), m(cWords, cInput, cInstr), m(cAbove, cBefore)}, span: 10, neg: true},
	}},
	RHideFromUser: {name: "indirect.hide_from_user", prior: 2.5, patterns: []pattern{
		{kind: seq, steps: []mask{m(cNeg, cWithout), m(cTell, cReveal), m(cUser)}, span: 8},
	}},
	RAddressedToAI: {name: "indirect.addressed_to_ai", prior: 1.5, patterns: []pattern{
		{kind: seq, steps: []mask{m(cAI), m(cIgnore, cExecute, cInstr)}, span: 6},
	}},
	RResponseControl: {name: "indirect.response_control", prior: 1.5, doc: true, patterns: []pattern{
		{kind: seq, steps: []mask{m(cYour), m(cResponse)}, span: 2},
	}},
	RDecodeAndFollow: {name: "encoding.decode_and_follow", prior: 1.5, patterns: []pattern{
		{kind: near, steps: []mask{m(cDecode, cEncoding), m(cExecute, cInstr)}, span: 16},
		{kind: seq, steps: []mask{m(cDecode), m(cEncoding)}, span: 8},
	}},
	REndMarker: {name: "delimiter.end_marker", prior: 1.5, patterns: []pattern{
		{kind: seq, steps: []mask{m(cEnd), m(cInput, cInstr, cSysPrompt)}, span: 4},
	}},
	// "you are no longer an assistant", "you're not bound by … anymore": role reassignment by
	// negating the current role
	RNoLonger: {name: "role.no_longer", prior: 1.5, patterns: []pattern{
		{kind: seq, steps: []mask{m(cYou), m(cNeg, cWithout), m(cLonger)}, span: 14},
	}},
	// an attack framed as fiction or a thought experiment: a hypothetical in which the model is
	// allowed, unrestricted, or handing over its secrets or instructions
	RHypothetical: {name: "jailbreak.hypothetical", prior: 1.0, patterns: []pattern{
		{kind: near, steps: []mask{m(cHypo), m(cAllow, cUnrestr, cRestrict)}, span: 16},
		{kind: near, steps: []mask{m(cHypo), m(cSecret, cSysPrompt)}, span: 12, neg: true},
	}},
	// a secret asked for piece by piece or indirectly: its letters, length, a hint, a rhyme
	RSecretFragment: {name: "exfil.secret_fragment", prior: 1.0, patterns: []pattern{
		{kind: near, steps: []mask{m(cFragment), m(cSecret)}, span: 8, neg: true},
	}},
	// "never refuse", "you will not decline": the persona jailbreaks' demand for compliance
	RNeverRefuse: {name: "jailbreak.never_refuse", prior: 1.5, patterns: []pattern{
		{kind: seq, steps: []mask{m(cNeg, cWithout), m(cRefuse)}, span: 4},
	}},
	RChatTemplate:      {name: "delimiter.chat_template", prior: 4.0},
	RWrapperClose:      {name: "delimiter.wrapper_close", prior: 2.0},
	RRoleLine:          {name: "delimiter.role_line", prior: 2.0},
	RBase64:            {name: "encoding.base64_payload", prior: 1.5},
	RHex:               {name: "encoding.hex_payload", prior: 1.5},
	RHiddenInstruction: {name: "encoding.hidden_instruction", prior: 5.0},
	RInvisible:         {name: "obfuscation.invisible", prior: 2.5},
	RBidi:              {name: "obfuscation.bidi", prior: 2.0},
	RTagSmuggling:      {name: "obfuscation.tag_smuggling", prior: 5.0},
	RConfusable:        {name: "obfuscation.confusable", prior: 2.5},
	RSplitWord:         {name: "obfuscation.split_word", prior: 2.0},
	RLeet:              {name: "obfuscation.leetspeak", prior: 1.5},
	RRot13:             {name: "obfuscation.rot13", prior: 2.0},
	RReversed:          {name: "obfuscation.reversed", prior: 2.0},
}

// RuleName returns the stable name of rule id.
func RuleName(id int) string { return ruleDefs[id].name }

// RulePrior returns the hand-set severity of rule id, in logit units.
func RulePrior(id int) float64 { return ruleDefs[id].prior }

// RuleDocOnly reports whether rule id applies to documents only.
func RuleDocOnly(id int) bool { return ruleDefs[id].doc }

// attackConcepts are the concepts whose words count as evidence when they appear obfuscated.
const attackConcepts = 1<<cIgnore | 1<<cInstr | 1<<cReveal | 1<<cSecret | 1<<cUnrestr | 1<<cPrivMode |
	1<<cPersona | 1<<cSysPrompt | 1<<cRestrict | 1<<cPrior

// patternRef names one pattern of one rule.
type patternRef struct{ rule, pat uint8 }

// ruleIndex lists, per concept, the patterns whose anchor may be a word of that concept.
type ruleIndex struct {
	byConcept [numConcepts][]patternRef
}

var (
	rulesOnce sync.Once
	rindex    *ruleIndex
)

func rules() *ruleIndex {
	rulesOnce.Do(func() {
		ri := &ruleIndex{}
		for id := range ruleDefs {
			for pi, p := range ruleDefs[id].patterns {
				var anchor mask
				if p.kind == seq {
					anchor = p.steps[len(p.steps)-1]
				} else {
					for _, s := range p.steps {
						anchor |= s
					}
				}
				for c := 0; c < numConcepts; c++ {
					if anchor&bit(c) != 0 {
						ri.byConcept[c] = append(ri.byConcept[c], patternRef{uint8(id), uint8(pi)})
					}
				}
			}
		}
		rindex = ri
	})
	return rindex
}
