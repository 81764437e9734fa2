# Not a policy file: Load must skip it (it would not even parse).
package warden.lib_test

this is not rego
