// Package mfa is TOTP step-up for human users: a TOTP code is accepted at
// most once per user (a replayed or older code is refused even within its
// validity window), the acceptance is on disk before success is reported,
// and anything the store cannot read or decrypt proves nobody (fail closed).
//
// # Enrollment
//
// Store.Enroll makes a fresh random secret for a user (RFC 6238 TOTP: SHA-1,
// 6 digits, 30 s period — what every authenticator app understands) and
// returns it once, as an otpauth:// URL and as base32 text; `warden mfa enroll`
// prints both. The store keeps the secret only encrypted with AES-256-GCM
// under the configured 32-byte key, with the user id as additional data, so
// an encrypted secret moved to another user's record does not decrypt.
// Enrolling a user again replaces the secret (the old authenticator entry
// stops working) and resets the replay floor, since no code of a fresh
// random secret can have been seen before. An enrollment is usable at once;
// Confirmed records that a code was accepted since.
//
// # Verification and replay
//
// Store.Verify accepts a code for the current 30 s time step or one step
// either side (clock skew). It works out which step the code belongs to and
// accepts it only if that step is later than the last accepted one, then
// persists the new step (atomic write, fsync, directory fsync) before it
// returns nil. The read-check-write runs under the store's write lock (a
// mutex in the process and flock(2) on path+".lock" across processes), so
// two concurrent uses of one code cannot both pass, even from two warden
// processes sharing the file. Failed attempts are limited per user
// (MaxFailures in FailureWindow, in memory) and refused with
// ErrTooManyAttempts beyond that.
//
// # Step-up protocol
//
// When the policy decision carries the require_mfa obligation and the
// principal has no verified second factor, the policy stage ends the exchange
// with StepUpRequired (RequireMFA is that check as a policy obligation
// enforcer): 401, error code "mfa_required", and the RFC 9470 challenge
//
//	WWW-Authenticate: Bearer realm="warden", error="insufficient_user_authentication",
//	    error_description="step-up required", acr_values="mfa"
//
// The client then POSTs {"code":"123456"} (application/json) with its usual
// credential to /v1/warden/mfa/verify, served by StepUp. A valid code yields
// 200 {"access_token","token_type":"Bearer","expires_in"}: a short-lived
// token, issued by an ElevatedIssuer, for the same principal with MFA set.
// The client retries the original request with that token. A wrong or
// replayed code gets the same 401 "invalid_mfa_code" (the internal cause,
// which goes to the log and audit record only, says which).
//
// Codes and secrets never appear in errors; errors name the user only.
package mfa
