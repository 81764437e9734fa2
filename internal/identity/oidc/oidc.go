package oidc

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"

	"github.com/warden-ai/warden/internal/config"
	"github.com/warden-ai/warden/internal/gateway"
	"github.com/warden-ai/warden/internal/identity"
)

// Defaults applied to a provider field left zero. The config loader applies
// the same ones; New applies them again so that it is safe on its own.
const (
	DefaultClockSkew          = 30 * time.Second
	MaxClockSkew              = 5 * time.Minute
	DefaultMaxTokenBytes      = 8192
	MaxTokenBytesLimit        = 64 << 10 // the largest max_token_bytes New accepts
	DefaultMinRefreshInterval = 30 * time.Second
	DefaultKind               = gateway.KindUser
	DefaultCacheSize          = 10000
)

// DefaultAlgorithms are the algorithms allowed when a provider names none.
var DefaultAlgorithms = []string{"RS256", "ES256"}

// supportedAlgorithms are the only algorithms a provider may allow: all
// asymmetric. "none" and HMAC (HS256/384/512) are never accepted.
var supportedAlgorithms = map[string]jose.SignatureAlgorithm{
	"RS256": jose.RS256, "RS384": jose.RS384, "RS512": jose.RS512,
	"PS256": jose.PS256, "PS384": jose.PS384, "PS512": jose.PS512,
	"ES256": jose.ES256, "ES384": jose.ES384, "ES512": jose.ES512,
	"EdDSA": jose.EdDSA,
}

// ErrKeysUnavailable is wrapped by the errors of an issuer whose signing
// keys could not be fetched. It does not wrap identity.ErrNotProven: the
// identity stage answers 503 and fails closed.
var ErrKeysUnavailable = errors.New("oidc: signing keys unavailable")

// Background refresh timing. Options carries test overrides.
const (
	refreshEvery = time.Hour
	retryMin     = time.Second
	retryMax     = 2 * time.Minute
)

// Options are the dependencies of an Authenticator. All are optional.
type Options struct {
	// HTTPClient fetches discovery documents and JWKS. Its redirects are
	// restricted to HTTPS (plain HTTP to loopback); a provider's ca_file
	// replaces its root CAs. Default: a client with a 10s timeout.
	HTTPClient *http.Client
	// Logger receives key fetch and refresh events. Default: discard.
	Logger *slog.Logger
	// Now is the clock of refresh rate limits. Default time.Now. (The
	// clock of token validity is the now passed to Authenticate.)
	Now func() time.Time
	// CacheSize bounds the number of verified tokens remembered: 0 means
	// DefaultCacheSize, a negative number disables the cache.
	CacheSize int

	// Test overrides of the background refresh timing; zero: the defaults.
	refreshEvery, retryMin, retryMax time.Duration
}

// Authenticator proves principals from JWTs of the configured OIDC issuers.
// It implements identity.Authenticator and identity.Revalidator.
type Authenticator struct {
	providers     []*provider
	byIssuer      map[string]*provider
	maxTokenBytes int // the largest of the providers' limits
	log           *slog.Logger
	cache         *tokenCache // nil: disabled

	bg     context.Context // background refreshes; cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once

	refreshEvery, retryMin, retryMax time.Duration
}

// provider is one configured issuer and its current keys.
type provider struct {
	name       string
	issuer     string
	audiences  []string
	algs       []jose.SignatureAlgorithm
	skew       time.Duration
	maxBytes   int
	minRefresh time.Duration
	kind       string
	claims     config.ClaimMapping
	src        *source
	log        *slog.Logger
	now        func() time.Time

	keys atomic.Pointer[keySet] // nil until the first successful fetch

	sf          singleflight.Group
	mu          sync.Mutex
	lastRefresh time.Time // last refresh triggered by an unknown key id
	lastErr     error     // its outcome
}

// New returns an Authenticator for providers and fetches their keys once,
// bounded by ctx. It fails on invalid configuration, an unreadable
// jwks_file, and a discovery document naming another issuer. An issuer that
// cannot be reached does not fail New: its tokens are refused with an error
// wrapping ErrKeysUnavailable (503) while its keys are fetched again in the
// background with backoff, until they are fetched or Close is called.
func New(ctx context.Context, providers []config.OIDCProvider, opts Options) (*Authenticator, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	a := &Authenticator{
		byIssuer:     make(map[string]*provider, len(providers)),
		log:          log,
		refreshEvery: orDefault(opts.refreshEvery, refreshEvery),
		retryMin:     orDefault(opts.retryMin, retryMin),
		retryMax:     orDefault(opts.retryMax, retryMax),
	}
	switch {
	case opts.CacheSize == 0:
		a.cache = newTokenCache(DefaultCacheSize)
	case opts.CacheSize > 0:
		a.cache = newTokenCache(opts.CacheSize)
	}
	for i, pc := range providers {
		p, err := newProvider(pc, opts.HTTPClient, log, now)
		if err != nil {
			return nil, fmt.Errorf("oidc: provider %d (%s): %w", i, label(pc), err)
		}
		if _, dup := a.byIssuer[p.issuer]; dup {
			return nil, fmt.Errorf("oidc: provider %d (%s): issuer %q is configured twice", i, label(pc), p.issuer)
		}
		a.byIssuer[p.issuer] = p
		a.providers = append(a.providers, p)
		a.maxTokenBytes = max(a.maxTokenBytes, p.maxBytes)
	}

	// First fetch, all issuers at once.
	errs := make([]error, len(a.providers))
	var wg sync.WaitGroup
	for i, p := range a.providers {
		wg.Go(func() { errs[i] = p.refresh(ctx) })
	}
	wg.Wait()
	for i, p := range a.providers {
		var perm *permanentError
		switch {
		case errs[i] == nil:
		case errors.As(errs[i], &perm) || p.src.file != "":
			return nil, fmt.Errorf("oidc: provider %d (%s): %w", i, p.name, errs[i])
		default:
			log.Warn("oidc: issuer keys unavailable; its tokens are refused (503) until they are fetched",
				"issuer", p.issuer, "err", errs[i])
		}
	}

	a.bg, a.cancel = context.WithCancel(context.WithoutCancel(ctx))
	for i, p := range a.providers {
		failing := errs[i] != nil
		a.wg.Go(func() { a.keepFresh(p, failing) })
	}
	return a, nil
}

// Close stops the background key refreshes. Authentication keeps working
// with the keys already fetched.
func (a *Authenticator) Close() error {
	a.once.Do(func() {
		if a.cancel != nil {
			a.cancel()
		}
		a.wg.Wait()
	})
	return nil
}

// Name implements identity.Authenticator.
func (a *Authenticator) Name() string { return "oidc" }

// Issuers returns the configured issuers, in configuration order.
func (a *Authenticator) Issuers() []string {
	out := make([]string, len(a.providers))
	for i, p := range a.providers {
		out[i] = p.issuer
	}
	return out
}

// Handles implements identity.Authenticator: c carries a JWT whose
// unverified iss is a configured issuer. Nothing is trusted here; an
// oversized token of a configured issuer is handled (and then refused).
func (a *Authenticator) Handles(c *identity.Credentials) bool {
	if c == nil || identity.KindOf(c.Bearer) != identity.BearerJWT {
		return false
	}
	// A token verified before was ours; skip decoding its payload.
	if a.cache != nil && len(c.Bearer) <= a.maxTokenBytes && a.cache.contains(sha256.Sum256([]byte(c.Bearer))) {
		return true
	}
	iss, ok := peekIssuer(c.Bearer)
	if !ok {
		return false
	}
	_, ok = a.byIssuer[iss]
	return ok
}

// Authenticate implements identity.Authenticator. It returns an error
// wrapping identity.ErrNotProven (401) for every token that does not prove a
// principal, and an error wrapping ErrKeysUnavailable (503) when the
// issuer's keys cannot be had. Reasons never contain the token.
func (a *Authenticator) Authenticate(ctx context.Context, c *identity.Credentials, now time.Time) (gateway.Principal, error) {
	if c == nil || c.Bearer == "" {
		return gateway.Principal{}, identity.NotProven("oidc: no bearer token")
	}
	if len(a.providers) == 0 {
		return gateway.Principal{}, identity.NotProven("oidc: no issuers configured")
	}
	tok := c.Bearer
	if len(tok) > a.maxTokenBytes {
		return gateway.Principal{}, tooLarge(len(tok), a.maxTokenBytes)
	}
	if !identity.CompactJWS(tok) {
		return gateway.Principal{}, identity.NotProven("oidc: malformed token: not a compact JWS")
	}
	var sum [sha256.Size]byte
	if a.cache != nil {
		sum = sha256.Sum256([]byte(tok))
		if p, hit, err := a.cache.lookup(sum, now); hit {
			return p, err
		}
	}

	iss, ok := peekIssuer(tok)
	if !ok {
		return gateway.Principal{}, identity.NotProven("oidc: malformed token: no readable iss claim")
	}
	p := a.byIssuer[iss]
	if p == nil {
		return gateway.Principal{}, identity.NotProven("oidc: issuer %q not accepted", clip(iss))
	}
	if len(tok) > p.maxBytes {
		return gateway.Principal{}, tooLarge(len(tok), p.maxBytes)
	}

	jws, err := jose.ParseSignedCompact(tok, p.algs)
	if err != nil {
		var bad *jose.ErrUnexpectedSignatureAlgorithm
		if errors.As(err, &bad) {
			return gateway.Principal{}, identity.NotProven("oidc: algorithm %q not allowed for issuer %s",
				clip(string(bad.Got)), p.issuer)
		}
		return gateway.Principal{}, identity.NotProven("oidc: malformed token: %s", clip(err.Error()))
	}
	if len(jws.Signatures) != 1 {
		return gateway.Principal{}, identity.NotProven("oidc: malformed token: %d signatures", len(jws.Signatures))
	}
	h := jws.Signatures[0].Header
	if _, ok := h.ExtraHeaders["b64"]; ok {
		return gateway.Principal{}, identity.NotProven("oidc: unsupported b64 header")
	}
	alg := jose.SignatureAlgorithm(h.Algorithm)
	keys, err := p.keysFor(ctx, h.KeyID, alg)
	if err != nil {
		return gateway.Principal{}, err
	}
	var payload []byte
	var used *verifyKey
	for _, k := range keys {
		if payload, err = jws.Verify(k.key); err == nil {
			used = k
			break
		}
	}
	if used == nil {
		return gateway.Principal{}, identity.NotProven("oidc: signature does not verify under key %q of issuer %s",
			clip(h.KeyID), p.issuer)
	}

	cl, err := parseClaims(payload)
	if err != nil {
		return gateway.Principal{}, err
	}
	pr, times, err := p.principal(cl, now)
	if err != nil {
		return gateway.Principal{}, err
	}
	if a.cache != nil {
		a.cache.put(sum, &cacheEntry{p: p, kid: used.kid, fp: used.fp, times: times, principal: pr}, now)
		pr = clonePrincipal(pr)
	}
	return pr, nil
}

// Revalidate implements identity.Revalidator: the token must not have
// expired (exp plus the issuer's clock skew, no more).
func (a *Authenticator) Revalidate(pr *gateway.Principal, now time.Time) error {
	if pr == nil {
		return identity.NotProven("oidc: no principal")
	}
	p := a.byIssuer[pr.Issuer]
	if p == nil {
		return identity.NotProven("oidc: issuer %q not accepted", clip(pr.Issuer))
	}
	if pr.ExpiresAt.IsZero() {
		return identity.NotProven("oidc: token has no expiry")
	}
	if !now.Before(pr.ExpiresAt.Add(p.skew)) {
		return identity.NotProven("oidc: token expired at %s", stamp(pr.ExpiresAt))
	}
	return nil
}

// newProvider validates pc, applies the defaults and prepares its key source.
func newProvider(pc config.OIDCProvider, base *http.Client, log *slog.Logger, now func() time.Time) (*provider, error) {
	if pc.Issuer == "" {
		return nil, errors.New("issuer is required")
	}
	if len(pc.Audiences) == 0 {
		return nil, errors.New("audiences: at least one is required")
	}
	for _, aud := range pc.Audiences {
		if aud == "" {
			return nil, errors.New("audiences: empty audience")
		}
	}
	p := &provider{
		name:       label(pc),
		issuer:     pc.Issuer,
		audiences:  slices.Clone(pc.Audiences),
		skew:       pc.ClockSkew.D(),
		maxBytes:   pc.MaxTokenBytes,
		minRefresh: pc.MinRefreshInterval.D(),
		kind:       pc.Kind,
		claims:     pc.Claims,
		log:        log.With("issuer", pc.Issuer),
		now:        now,
	}
	algs := pc.Algorithms
	if len(algs) == 0 {
		algs = DefaultAlgorithms
	}
	for _, name := range algs {
		alg, err := allowedAlgorithm(name)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(p.algs, alg) {
			p.algs = append(p.algs, alg)
		}
	}
	switch {
	case p.skew == 0:
		p.skew = DefaultClockSkew
	case p.skew < 0 || p.skew > MaxClockSkew:
		return nil, fmt.Errorf("clock_skew %s: must be between 0 and %s", p.skew, MaxClockSkew)
	}
	switch {
	case p.maxBytes == 0:
		p.maxBytes = DefaultMaxTokenBytes
	case p.maxBytes < 0 || p.maxBytes > MaxTokenBytesLimit:
		return nil, fmt.Errorf("max_token_bytes %d: must be between 1 and %d", p.maxBytes, MaxTokenBytesLimit)
	}
	switch {
	case p.minRefresh == 0:
		p.minRefresh = DefaultMinRefreshInterval
	case p.minRefresh < 0:
		return nil, fmt.Errorf("min_refresh_interval %s: must not be negative", p.minRefresh)
	}
	switch p.kind {
	case "":
		p.kind = DefaultKind
	case gateway.KindUser, gateway.KindService, gateway.KindAgent:
	default:
		return nil, fmt.Errorf("kind %q: must be user, service or agent", p.kind)
	}
	p.claims.Subject = orDefault(p.claims.Subject, "sub")
	p.claims.Groups = orDefault(p.claims.Groups, "groups")
	p.claims.Roles = orDefault(p.claims.Roles, "roles")
	p.claims.Scopes = orDefault(p.claims.Scopes, "scope")

	src, err := newSource(pc, base)
	if err != nil {
		return nil, err
	}
	p.src = src
	return p, nil
}

// allowedAlgorithm maps a configured algorithm name to go-jose's, refusing
// "none", HMAC and anything unknown.
func allowedAlgorithm(name string) (jose.SignatureAlgorithm, error) {
	if alg, ok := supportedAlgorithms[name]; ok {
		return alg, nil
	}
	switch up := strings.ToUpper(name); {
	case up == "NONE" || up == "":
		return "", fmt.Errorf("algorithms: %q is never accepted: tokens must be signed", name)
	case strings.HasPrefix(up, "HS"):
		return "", fmt.Errorf("algorithms: HMAC algorithm %q is never accepted: it would let a public key act as a shared secret", name)
	default:
		names := make([]string, 0, len(supportedAlgorithms))
		for n := range supportedAlgorithms {
			names = append(names, n)
		}
		slices.Sort(names)
		return "", fmt.Errorf("algorithms: unsupported algorithm %q (supported: %s)", name, strings.Join(names, ", "))
	}
}

// refresh fetches the provider's keys and installs them. The old keys stay
// in use when the fetch fails.
func (p *provider) refresh(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	ks, err := p.src.fetch(ctx, p.log)
	if err != nil {
		return fmt.Errorf("oidc: issuer %s: fetch keys: %w", p.issuer, err)
	}
	p.keys.Store(ks)
	p.log.Info("oidc: keys fetched", "keys", ks.n)
	return nil
}

// refreshForUnknownKid refetches the keys because a token named a key id we
// do not know: at most once per minRefresh, one fetch shared by every
// concurrent caller. It returns the outcome of the latest such fetch.
func (p *provider) refreshForUnknownKid(ctx context.Context) error {
	ch := p.sf.DoChan("keys", func() (any, error) {
		now := p.now()
		p.mu.Lock()
		if !p.lastRefresh.IsZero() && now.Before(p.lastRefresh.Add(p.minRefresh)) {
			err := p.lastErr
			p.mu.Unlock()
			return nil, err
		}
		p.lastRefresh = now
		p.mu.Unlock()
		p.log.Info("oidc: unknown key id; refreshing keys")
		// The fetch is shared: one caller going away must not cancel it.
		err := p.refresh(context.WithoutCancel(ctx))
		if err != nil {
			p.log.Warn("oidc: key refresh failed", "err", err)
		}
		p.mu.Lock()
		p.lastErr = err
		p.mu.Unlock()
		return nil, err
	})
	select {
	case r := <-ch:
		return r.Err
	case <-ctx.Done():
		return fmt.Errorf("oidc: waiting for a key refresh: %w", ctx.Err())
	}
}

// keysFor returns the keys that may verify a token with kid and alg:
// matched by key id, and of the type (and declared alg) alg needs.
func (p *provider) keysFor(ctx context.Context, kid string, alg jose.SignatureAlgorithm) ([]*verifyKey, error) {
	ks := p.keys.Load()
	if ks == nil {
		return nil, fmt.Errorf("%w: issuer %s: keys not fetched yet", ErrKeysUnavailable, p.issuer)
	}
	cands := ks.byKid[kid]
	if len(cands) == 0 {
		rerr := p.refreshForUnknownKid(ctx)
		cands = p.keys.Load().byKid[kid]
		if len(cands) == 0 {
			if rerr != nil {
				return nil, fmt.Errorf("%w: issuer %s: unknown key id %q and the key refresh failed: %w",
					ErrKeysUnavailable, p.issuer, clip(kid), rerr)
			}
			return nil, identity.NotProven("oidc: unknown key id %q for issuer %s", clip(kid), p.issuer)
		}
	}
	var out []*verifyKey
	for _, k := range cands {
		if k.fits(alg) {
			out = append(out, k)
		}
	}
	if len(out) == 0 {
		return nil, identity.NotProven("oidc: key %q of issuer %s cannot verify %s: key type or declared alg differs",
			clip(kid), p.issuer, alg)
	}
	return out, nil
}

// keepFresh refetches the provider's keys in the background: with backoff
// while fetches fail, every refreshEvery otherwise, until Close.
func (a *Authenticator) keepFresh(p *provider, failing bool) {
	backoff := a.retryMin
	for {
		wait := a.refreshEvery
		if failing {
			// Up to 25% jitter so that replicas do not retry in step.
			wait = backoff + rand.N(backoff/4+1)
			backoff = min(backoff*2, a.retryMax)
		} else {
			backoff = a.retryMin
		}
		t := time.NewTimer(wait)
		select {
		case <-a.bg.Done():
			t.Stop()
			return
		case <-t.C:
		}
		err := p.refresh(a.bg)
		if err != nil && a.bg.Err() == nil {
			p.log.Warn("oidc: background key refresh failed; keeping the current keys", "err", err, "retry_in", backoff)
		}
		failing = err != nil
	}
}

// principal checks the verified claims and maps them to a principal.
func (p *provider) principal(cl claimSet, now time.Time) (gateway.Principal, tokenTimes, error) {
	var t tokenTimes
	iss, _, err := cl.str("iss")
	if err != nil {
		return gateway.Principal{}, t, err
	}
	if iss != p.issuer {
		return gateway.Principal{}, t, identity.NotProven("oidc: issuer %q not accepted", clip(iss))
	}
	auds, ok, err := cl.list("aud", false)
	if err != nil {
		return gateway.Principal{}, t, err
	}
	if !ok {
		return gateway.Principal{}, t, identity.NotProven("oidc: token has no aud claim")
	}
	if !slices.ContainsFunc(auds, func(a string) bool { return slices.Contains(p.audiences, a) }) {
		return gateway.Principal{}, t, identity.NotProven("oidc: audience not accepted")
	}
	var hasExp bool
	if t.exp, hasExp, err = cl.date("exp"); err != nil {
		return gateway.Principal{}, t, err
	}
	if !hasExp {
		return gateway.Principal{}, t, identity.NotProven("oidc: token has no exp claim")
	}
	if t.nbf, t.hasNbf, err = cl.date("nbf"); err != nil {
		return gateway.Principal{}, t, err
	}
	if t.iat, t.hasIat, err = cl.date("iat"); err != nil {
		return gateway.Principal{}, t, err
	}
	if err := p.checkTimes(t, now); err != nil {
		return gateway.Principal{}, t, err
	}

	sub, ok, err := cl.str(p.claims.Subject)
	if err != nil {
		return gateway.Principal{}, t, err
	}
	if !ok || sub == "" {
		return gateway.Principal{}, t, identity.NotProven("oidc: token has no %s claim", p.claims.Subject)
	}
	jti, _, err := cl.str("jti")
	if err != nil {
		return gateway.Principal{}, t, err
	}
	authTime, hasAuthTime, err := cl.date("auth_time")
	if err != nil {
		return gateway.Principal{}, t, err
	}
	switch {
	case hasAuthTime:
	case t.hasIat:
		authTime = t.iat
	case t.hasNbf:
		authTime = t.nbf
	}
	groups, _, err := cl.list(p.claims.Groups, false)
	if err != nil {
		return gateway.Principal{}, t, err
	}
	roles, _, err := cl.list(p.claims.Roles, false)
	if err != nil {
		return gateway.Principal{}, t, err
	}
	scopes, _, err := cl.list(p.claims.Scopes, true)
	if err != nil {
		return gateway.Principal{}, t, err
	}
	amr, _, err := cl.list("amr", false)
	if err != nil {
		return gateway.Principal{}, t, err
	}
	return gateway.Principal{
		Kind:         p.kind,
		ID:           sub,
		AuthMethod:   "jwt",
		CredentialID: jti,
		Issuer:       iss,
		AuthTime:     authTime,
		ExpiresAt:    t.exp,
		Scopes:       scopes,
		Groups:       groups,
		Roles:        roles,
		// RFC 8176 method values that are a second factor or stronger.
		MFA: slices.ContainsFunc(amr, func(m string) bool { return m == "mfa" || m == "otp" || m == "hwk" }),
	}, t, nil
}

// tokenTimes are a token's validity claims.
type tokenTimes struct {
	exp            time.Time
	nbf, iat       time.Time
	hasNbf, hasIat bool
}

// checkTimes checks exp, nbf and iat against now with the provider's skew
// (RFC 7519 §4.1.4, §4.1.5).
func (p *provider) checkTimes(t tokenTimes, now time.Time) error {
	if !now.Before(t.exp.Add(p.skew)) {
		return identity.NotProven("oidc: token expired at %s", stamp(t.exp))
	}
	if t.hasNbf && now.Add(p.skew).Before(t.nbf) {
		return identity.NotProven("oidc: token not valid before %s", stamp(t.nbf))
	}
	if t.hasIat && now.Add(p.skew).Before(t.iat) {
		return identity.NotProven("oidc: token issued in the future (iat %s)", stamp(t.iat))
	}
	return nil
}

func tooLarge(n, limit int) error {
	return identity.NotProven("oidc: token is %d bytes, over the limit of %d", n, limit)
}

// clip bounds an attacker-controlled string quoted into a reason.
func clip(s string) string {
	const n = 96
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func label(pc config.OIDCProvider) string {
	if pc.Name != "" {
		return pc.Name
	}
	return pc.Issuer
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

var (
	_ identity.Authenticator = (*Authenticator)(nil)
	_ identity.Revalidator   = (*Authenticator)(nil)
)
