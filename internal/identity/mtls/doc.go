// Package mtls proves principals from TLS client certificates: a certificate
// is accepted only when it verifies, at the time of the request, against the
// X.509 bundle of the SPIFFE trust domain named by its single SPIFFE ID, and
// that SPIFFE ID becomes the principal.
//
// The TLS layer does not verify client certificates (see package tlsconf):
// this package does, so that a bad certificate is a 401 with an audit record
// instead of a handshake failure nobody sees. Every refusal of a credential
// wraps identity.ErrNotProven; an error that does not is a fault (a trust
// bundle that cannot be read), and the identify stage fails closed with 503.
//
// Trust bundles come from PEM files (FileBundles, reloaded when they change)
// or from a SPIRE agent's Workload API (WorkloadSource, which also provides
// warden's own server certificate). Both rotate without a restart.
//
// What is refused (identity.ErrNotProven):
//   - a chain that does not verify against the bundle of the leaf's trust
//     domain at the request time: another trust domain's CA, an untrusted CA
//     claiming the trust domain, an expired or not yet valid certificate
//     anywhere in the chain, a missing intermediate;
//   - a trust domain that is not configured;
//   - a leaf without a SPIFFE ID, unless allow_non_spiffe is set;
//   - a leaf with a SPIFFE ID and more than one URI SAN, or a malformed SPIFFE ID;
//   - a leaf that is a CA, may sign certificates or CRLs, or whose extended
//     key usage excludes client authentication;
//   - a chain of more than 10 certificates.
//
// What fails closed (any other error, 503): the bundle of the leaf's trust
// domain exists in the configuration but cannot be loaded (a corrupt or
// missing bundle file after a reload, a closed Workload API source).
package mtls
