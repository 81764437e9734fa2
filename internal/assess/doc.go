// Package assess is the assess stage: it gathers the context policy needs
// beyond the request and the principal — device or workload posture, the
// source address's location, the principal's risk score — and guarantees
// that after it runs ex.Assessment is set, holds only verified posture, and
// that a posture assertion that was presented but does not verify ends the
// exchange (401), never silently becomes "no posture".
//
// # Posture
//
// A signed posture header (default X-Warden-Posture) is a compact JWS from a
// device-posture or MDM service, signed with a key of the configured JWKS
// file (EdDSA or ES256; "none", HMAC and every other algorithm are refused).
// Its claims must bind it to the presenting principal and to warden:
//
//   - sub equals the principal's id (for an agent acting for a user, the
//     agent's own id: the user's posture is not the agent's);
//   - aud contains the configured audience;
//   - exp and iat are present, exp - iat is at most max_age, and the
//     current time is before exp, not before nbf and not before iat (each
//     with the configured clock skew);
//   - posture is a JSON object of at most config.MaxPostureBytes, nested at
//     most config.MaxPostureDepth deep, and the whole payload has no
//     duplicate member names (so that warden and the signer cannot read
//     different values from the same bytes).
//
// A present header that fails any check is a 401 with code invalid_posture
// and a message that says nothing about which check failed; the reason goes
// to the log and the audit record. Absent posture and failed posture are
// different facts and a policy may treat them differently (e.g. allow
// unmanaged devices to read, but treat a forged assertion as an attack), so
// failure is never reported as absence. The header is removed from the
// request before it is forwarded, whether it verified or not, and also when
// signed posture is not configured.
//
// Workload posture comes from configuration: the first context.posture
// workloads rule whose SPIFFE ID pattern matches the workload's SPIFFE ID
// gives the attributes, plus "spiffe_id" set to the matched ID. The workload
// is the principal itself when it was proven by mTLS, or the mTLS peer
// (Principal.Workload) when a bearer credential named the principal.
//
// When both exist, the verified header wins and the workload posture is not
// merged into it: PostureSource then says exactly where every attribute of
// input.context.posture came from, and a fresh per-device attestation is
// not overridden by static configuration.
//
// # Geo
//
// The source address (the TCP peer) is looked up in MaxMind-format
// databases (GeoLite2/GeoIP2 City or Country, and an ASN database). Private,
// loopback, link-local, shared (100.64.0.0/10) and other non-global
// addresses and addresses not in the databases give no location. Database
// files are read into memory (not memory-mapped, so that a file rewritten in
// place cannot fault a running lookup), verified in full before use, and
// reloaded when their modification time, size or inode changes; a file that
// does not verify leaves the previous database in service and is reported
// by Healthy. A replaced database is closed only after the last lookup that
// uses it has finished.
//
// # Risk
//
// A RiskSource gives the principal's current risk score. The score is
// clamped to [0, 1]; NaN (and an infinity) counts as 1: unknown is risky.
// Without a source the score is 0.
package assess
