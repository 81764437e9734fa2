// Package audit keeps warden's audit log, one record per exchange, allowed
// or denied, and guarantees that any change to it after the fact — a
// record changed, deleted, inserted or reordered, the log cut short,
// rolled back or rewritten — is detected by Verify against a checkpoint
// signed with a key kept apart from the log; with the default sync mode, a
// request is answered only once its record is durable, and if the log
// cannot be written, requests are refused.
//
// # Merkle tree
//
// The log is an append-only Merkle tree in the design of Certificate
// Transparency (RFC 6962, RFC 9162), built with golang.org/x/mod/sumdb/tlog:
// record i's leaf is tlog.RecordHash (SHA-256 of 0x00 and the record's
// stored bytes), interior nodes are tlog.NodeHash (SHA-256 of 0x01 and the
// two children), and the stored hashes of each record sit at
// tlog.StoredHashIndex positions, so that tlog.TreeHash, ProveRecord and
// ProveTree work from them directly. A record's stored bytes are its JSON
// encoding (Record), index first; `warden audit export` prints them as
// they are, so anyone can recompute the tree.
//
// # Checkpoints
//
// A checkpoint is a C2SP tlog-checkpoint (origin, tree size, root hash) in
// a signed note (golang.org/x/mod/sumdb/note) with an Ed25519 key. One is
// made every CheckpointEvery records, CheckpointInterval after records were
// added, and at Close; each is stored in the log and, if configured, copied
// to a witness that only ever accepts a checkpoint extending its last one.
// A verifier that trusts the key trusts exactly the records under the
// checkpoint's root: Verify checks them all, Prove shows one record's
// inclusion and Consistency that a later checkpoint extends an earlier one.
//
// # Storage
//
// A Backend stores records, stored hashes and checkpoints; the Log above it
// hashes and signs, so every backend yields the same tree. The file backend
// (OpenFileBackend) is the default: framed segment files fsynced with group
// commit, a stored-hashes file written with each checkpoint, and repair of
// a torn tail at open that is logged, recorded in repairs.log and counted,
// never silent. internal/audit/audittest is the conformance suite for other
// backends. docs/audit.md describes the record schema, the files, the
// verification rules and their exit codes.
package audit
