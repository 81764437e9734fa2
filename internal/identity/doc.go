// Package identity proves who is calling: it turns a presented credential
// into a gateway.Principal or refuses, and it fails closed — a credential
// store it cannot read authenticates nobody.
//
// API keys (wk_<id>_<secret>) are stored only as SHA-256 hashes in a JSON
// file shared by the server and the `warden keys` command; see KeyStore and
// APIKeyStage.
package identity
