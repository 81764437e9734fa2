package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// Size bounds for files the config points at.
const (
	maxPEMBytes    = 4 << 20  // certificates, keys, CA bundles
	maxSecretBytes = 64 << 10 // a secret goes into one header line
)

// checkFiles checks what the resolved config points at: TLS and CA files,
// credentials, the policy directory and the data paths. Fields that already
// failed validation are skipped. Errors name the field; lines come from the
// same YAML tree as validation's.
func (c *Config) checkFiles(v *validator) {
	for i := range c.Listeners {
		l := &c.Listeners[i]
		p := fmt.Sprintf("listeners[%d].tls", i)
		if l.TLS.Mode != TLSModeFiles || v.failed(p) {
			continue
		}
		cert, certErr := readFile(l.TLS.CertFile, maxPEMBytes)
		if certErr != nil && !v.failed(p+".cert_file") {
			v.add(p+".cert_file", certErr.Error())
		}
		key, keyErr := readFile(l.TLS.KeyFile, maxPEMBytes)
		if keyErr != nil && !v.failed(p+".key_file") {
			v.add(p+".key_file", keyErr.Error())
		}
		if certErr == nil && keyErr == nil {
			if _, err := tls.X509KeyPair(cert, key); err != nil {
				v.add(p, fmt.Sprintf("cert_file and key_file are not a usable certificate and key: %v", err))
			}
		}
	}
	for i := range c.Routes {
		u := &c.Routes[i].Upstream
		p := fmt.Sprintf("routes[%d].upstream", i)
		if u.CAFile != "" && !v.failed(p+".ca_file") && !v.failed(p+".url") {
			if pem, err := readFile(u.CAFile, maxPEMBytes); err != nil {
				v.add(p+".ca_file", err.Error())
			} else if !x509.NewCertPool().AppendCertsFromPEM(pem) {
				v.add(p+".ca_file", fmt.Sprintf("%s: no PEM certificates in it", u.CAFile))
			}
		}
		cr := u.Credential
		cp := p + ".credential"
		if cr == nil || v.failed(cp) {
			continue
		}
		field := cp + ".env"
		if cr.File != "" {
			field = cp + ".file"
		}
		if v.failed(field) {
			continue
		}
		if _, err := cr.Secret(); err != nil {
			v.add(field, strings.TrimPrefix(err.Error(), "config: credential: "))
		}
	}
	if c.Policy.Dir != "" && !v.failed("policy.dir") {
		if err := checkDir(c.Policy.Dir); err != nil {
			v.add("policy.dir", err.Error())
		}
	}
	c.checkAuditFiles(v)
	for _, f := range []struct{ field, path string }{{"keys.path", c.Keys.Path}} {
		if f.path == "" || v.failed(f.field) {
			continue
		}
		if fi, err := os.Stat(f.path); err == nil && fi.IsDir() {
			v.add(f.field, fmt.Sprintf("%s is a directory; expected a file path", f.path))
		}
	}
	if c.Keys.Path != "" && c.Keys.Path == c.Audit.Path && !v.failed("audit.path") {
		v.add("audit.path", "must not be the same file as keys.path")
	}
	c.checkIdentityFiles(v)
}

// readFile reads a regular file of at most max bytes.
func readFile(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, describeOpenErr(path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("%s: cannot read: %w", path, err)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, max)
	}
	return data, nil
}

func describeOpenErr(path string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s does not exist", path)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%s is not readable (permission denied)", path)
	}
	return fmt.Errorf("cannot open: %w", err)
}

// checkDir checks that path is a readable directory.
func checkDir(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return describeOpenErr(path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", path)
	}
	if _, err := f.ReadDir(1); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: cannot list: %w", path, err)
	}
	return nil
}

// Secret returns the credential's secret: the value of the environment
// variable Env, or the contents of File, with trailing "\r\n"/"\n" trimmed.
// It fails if the secret is missing, empty, or holds control characters
// (which would corrupt the header it is sent in). Error messages name the
// variable or file, never the secret.
//
// File is read as is: call Secret on a config returned by Load, whose paths
// are resolved against the config file's directory.
func (c *Credential) Secret() (string, error) {
	if c == nil {
		return "", errors.New("config: credential: none configured")
	}
	var (
		secret string
		source string
	)
	switch {
	case c.Env != "" && c.File != "":
		return "", errors.New("config: credential: both env and file are set; use one")
	case c.Env != "":
		source = "env " + c.Env
		val, ok := os.LookupEnv(c.Env)
		if !ok {
			return "", fmt.Errorf("config: credential: %s is not set", source)
		}
		secret = val
	case c.File != "":
		source = "file " + c.File
		data, err := readFile(c.File, maxSecretBytes)
		if err != nil {
			return "", fmt.Errorf("config: credential: %w", err)
		}
		secret = string(data)
	default:
		return "", errors.New("config: credential: neither env nor file is set")
	}
	secret = strings.TrimRight(secret, "\r\n")
	if secret == "" {
		return "", fmt.Errorf("config: credential: %s is empty", source)
	}
	for i := 0; i < len(secret); i++ {
		if c := secret[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return "", fmt.Errorf("config: credential: %s: the secret contains a control character (byte %d); it cannot be sent in a header", source, i)
		}
	}
	return secret, nil
}
