package warden.authz_test

test_nothing if true
