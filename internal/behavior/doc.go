// Package behavior keeps an online, memory-bounded baseline of every
// principal's behaviour, scores each finished exchange against it, turns
// sustained deviations into a risk score that policy sees, and reports
// anomalies, with the features that drove them, to a Responder.
package behavior
