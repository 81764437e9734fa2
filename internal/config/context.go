package config

// Context configures the sources of the request context that policy sees
// beyond the request itself: device/workload posture, geolocation.
type Context struct{}

func (c *Config) validateContext(v *validator) {}
