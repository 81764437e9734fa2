package config

// Policy is the Rego policy set.
type Policy struct {
	Dir string `yaml:"dir"` // directory of .rego files; required
	// Grants configures just-in-time grants.
	Grants Grants `yaml:"grants"`
}

func (c *Config) validatePolicy(v *validator) {
	if c.Policy.Dir == "" {
		v.add("policy.dir", "required: warden denies everything without a policy")
	}
}
