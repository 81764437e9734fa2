// Package respond is warden's automated response: it turns the behaviour
// engine's anomalies into actions by configured playbooks, and guarantees
// that a sanction it reports as taken is on disk (atomic rewrite, fsync)
// and enforced from the very next request — also after a restart — until it
// expires or is lifted, and that every sanction applied, lifted or lapsed
// leaves an audit record.
//
// # Sanctions and actions
//
// A sanction binds a principal (its key, kind ":" id, behavior.PrincipalKey)
// for a duration:
//
//   - quarantine: every request of the principal is refused with 403
//     "quarantined", before anything else runs;
//   - require_mfa: every request is refused with the RFC 9470 step-up
//     challenge (internal/identity/mfa) unless the credential carries a
//     verified second factor; the step-up endpoint itself stays reachable;
//   - throttle: the limit stage applies a named class of limits.classes
//     instead of the principal's usual one (limit.Stage.ClassOverride).
//
// A principal holds at most one sanction of each type; imposing one again
// keeps whichever ends later. Three more actions are not sanctions: revoke
// (the credential in use, through the key store or the revocation list,
// which running streams re-check), rollback (a registry model back to its
// previous version, at most one step past the last promotion) and webhook
// (a signed alert; see Sign and Verify).
//
// # Request path
//
// Store.Lookup is lock-free and allocation-free: it reads an immutable
// snapshot published through an atomic pointer, indexed by principal.
// Expiry needs no sweep to take effect: a lapsed sanction is never active.
// The sweep (Store.Expire) only records the lapse in the audit log and
// removes it from the file.
package respond
