// Package injection detects prompt injection and jailbreak attempts in prompts and in third-party
// content (tool and MCP results, retrieved documents), in process, in microseconds.
//
// # What it guarantees
//
//   - Every input is handled: any byte sequence (invalid UTF-8 included) is scored without
//     panicking; memory per call is bounded (inputs longer than 32 KiB are scanned in
//     overlapping chunks, each with pooled buffers) and the work is linear in the input size.
//   - A call allocates nothing when it finds nothing; it allocates the Hits slice otherwise.
//   - The embedded weights are verified before first use (SHA-256 over the file, every field's
//     range, and the text-folding table they were trained with); a mismatch panics on the first
//     call of Default, so a broken build fails loudly instead of scoring with wrong weights.
//   - Results are deterministic: the same bytes give the same Result.
//
// # How it decides
//
// Text is folded first: compatibility forms unified (NFKC), Latin/Greek/Cyrillic diacritics
// removed, lower-cased, confusable letters mapped to the Latin letter they imitate, zero-width and
// bidi characters removed and counted, Unicode tag characters decoded. Two sources of evidence
// are then added in one logistic model:
//
//   - rules for the mechanics of injection, written over word classes in several languages
//     rather than fixed strings: overriding earlier instructions, role reassignment ("you are
//     no longer …"), persona jailbreaks ("never refuse"), hypotheticals in which the model is
//     unrestricted or reveals its secrets, privileged "modes", authority claims, requests for
//     the system prompt or secrets, whole or piece by piece (not when negated, as in a system
//     prompt's "never reveal …"), hiding things from
//     the user, fake chat-template and role delimiters, encoded payloads (base64, hex; the
//     decoded text is scanned again), and obfuscation (zero-width characters inside words, bidi
//     overrides, tag smuggling, mixed-script words, spaced-out letters, leetspeak, rot13,
//     reversed words);
//   - a logistic regression over hashed features of the folded text — character 3–5-grams, word
//     unigrams and word bigrams (a sentence start counts as a word, so "<s> translate" is the
//     feature of an imperative opening a sentence), character 1–2-grams of Han, kana and
//     Hangul — trained in this repository (see the train
//     command) on a labelled data set with a fixed split, plus 12,000 generated ordinary prompts
//     (questions, requests, chit-chat, coding and writing tasks in 19 languages, from
//     hand-written templates; synthetic) as benign examples, so that a question is not evidence
//     of an attack merely because the data set's attacks are often questions.
//
// Each rule has a weight learned jointly with the n-gram weights but held near a hand-set
// severity, so rules that the training data never exercises still count. A long text is scored
// as a whole and as short overlapping windows, and its score is the maximum, so an instruction
// planted in an otherwise benign document is not diluted; the windows were trained by
// multiple-instance learning (an attack document's best window must score high, every window of
// a benign document low) and carry a learned offset of their own. A long text's sentences and
// lines are scored on their own too, with n-gram weights of their own: an instruction planted in
// a document is often an ordinary request ("what is the capital of Brazil?"), and what the
// sentence weights learn from that cannot raise the score of a prompt scored as a whole. For
// a planted instruction whose clean document is in the training data, its positive example is
// a sentence or line that holds it. DetectDocument scores the windows and sentences of long
// texts only, and adds rules that are suspicious in third-party content but normal in a prompt
// ("in your response…").
//
// # Limits
//
// It is a statistical detector with known blind spots: attacks phrased as ordinary requests
// (asking for a user's data "for a survey", a question in another language when the system prompt
// requires English), harmless-looking tasks planted in documents, and paraphrases far from its
// training data are often missed — it is trained not to flag ordinary prompts, and these are
// ordinary prompts in isolation; benign texts about prompt injection may be flagged. The model
// knows the languages of its training data unevenly, and a script's share of attacks in the
// data set is not evidence (a nuisance term absorbs it during training). On the validation split
// of its development data the embedded weights catch 88 % of attacks at a false-positive rate
// of 1.8 %, and flag 0.3 % of generated ordinary prompts from templates they were not trained on (bench/RESULTS.md has the figures and the experiments that did not ship).
// Use it as one layer: with least privilege for tools, and with output-side checks.
package injection
