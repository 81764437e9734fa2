package config

// Grants configures just-in-time grants: time-bound permissions a principal
// requests and a different principal with an approver role approves.
type Grants struct{}

func (c *Config) validateGrants(v *validator) {}
