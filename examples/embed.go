// Package examples embeds the runnable example configurations, so that
// `warden demo` runs exactly the policy files a user reads in this folder.
package examples

import "embed"

// Quickstart holds examples/quickstart/policy/*.rego (tests included).
//
//go:embed quickstart/policy/*.rego
var Quickstart embed.FS

// QuickstartPolicyDir is the directory of the policy files inside Quickstart.
const QuickstartPolicyDir = "quickstart/policy"
