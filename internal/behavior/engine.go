package behavior

import (
	"context"
	"fmt"
	"hash/maphash"
	"log/slog"
	"math"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Features, in the order of a state's score arrays.
const (
	fRate      = iota // requests in the current minute (log scale)
	fTokensIn         // prompt tokens per request (log scale)
	fTokensOut        // completion tokens per request (log scale)
	fBytesOut         // response bytes per request (log scale)
	fModels           // a model the principal has not used recently
	fTools            // a tool the principal has not used recently
	fDenials          // 401, 403, 429
	fErrors           // other 4xx and 5xx
	fNetwork          // a source network the principal rarely uses
	fHours            // an hour of the day the principal is rarely active
	fPrompt           // the prompt is a near duplicate of a recent one
	fAccess           // a network never used before, at an hour the principal is rarely active
	fClient           // a client (TLS fingerprint) never used before, from a network never used before
	numFeatures
)

// Feature names, as reported in Anomaly.Features and metrics.
var featureNames = [numFeatures]string{
	"request_rate", "tokens_in", "tokens_out", "response_bytes", "distinct_models", "distinct_tools",
	"denial_ratio", "error_ratio", "new_network", "off_hours", "prompt_similarity", "new_network_off_hours",
	"new_client",
}

// FeatureNames lists the features the engine scores.
func FeatureNames() []string { return slices.Clone(featureNames[:]) }

// Soft features are circumstantial: each is common on its own (a burst, a
// long prompt, an outage, travel, working late), so its score is capped
// below half the threshold: two of them together do not alarm, they need a
// third feature. New network and unusual hour together are judged jointly
// (fAccess), by how unusual the hour is for that principal.
var softFeature = [numFeatures]bool{fRate: true, fTokensIn: true, fErrors: true, fNetwork: true, fHours: true}

// Warm-up features are those a new principal is judged on, against the
// population prior of its kind.
var warmupFeature = [numFeatures]bool{fRate: true, fTokensIn: true, fTokensOut: true, fBytesOut: true,
	fDenials: true, fErrors: true, fPrompt: true}

// Continuous statistics (robust, log scale), indexed like the first
// features, and their spread floors.
const numCont = 4

var contFloor = [numCont]float32{0.35, 0.3, 0.3, 0.3}

// A continuous feature's CUSUM increment is min(z, contZCap) − contAllow.
// The soft ones (rate, prompt size) look for spikes: only a request more
// than 3 deviations out counts. Output sizes look for a sustained shift: a
// smaller allowance, but a single request adds at most contZCap−contAllow,
// so one huge response does not alarm and a run of large ones does.
var (
	contAllow = [numCont]float32{3, 3, 1.5, 1.5}
	contZCap  = [numCont]float32{10, 10, 6, 6}
)

// Rate statistics (Bernoulli), their features and their lowest baseline.
const (
	bModels = iota
	bTools
	bDenials
	bErrors
	bNetwork
	bPrompt    // a near duplicate after a prompt that was not one
	bPromptRun // a near duplicate after one that was: runs of near duplicates have their own rate
	numRates
)

var rateFeature = [numRates]int{fModels, fTools, fDenials, fErrors, fNetwork, fPrompt, fPrompt}

const (
	pSat    = 0.9  // events at a baseline rate of at least this add no evidence for a rise …
	satStep = -0.1 // … but this
	pMin    = 0.01 // a baseline rate is never taken below 1%: rare is not never
	pMax    = 0.98
)

// Kinds of state. A principal's kind selects its population prior;
// unauthenticated requests are kept per source network.
const (
	kindUser = iota
	kindService
	kindAgent
	kindNetwork
	kindOther
	numKinds
)

// KindNetwork is the Anomaly.Kind of unauthenticated traffic from one
// source network (/24 for IPv4, /48 for IPv6); its ID is the prefix.
const KindNetwork = "network"

var kindNames = [numKinds]string{"user", "service", "agent", KindNetwork, "other"}

func kindIndex(kind string) int {
	switch kind {
	case "user":
		return kindUser
	case "service":
		return kindService
	case "agent":
		return kindAgent
	}
	return kindOther
}

// Scoring constants.
const (
	softCapFrac     = 0.45 // a soft feature's score is capped at this fraction of the threshold
	softSumFrac     = 0.6  // and all soft features together at this fraction: they only amplify the others
	strongCap       = 2    // any feature's score is capped at twice the threshold
	warmupMult      = 2    // during warm-up only scores above twice the threshold alarm
	priorWeight     = 10   // the population prior counts as this many observations
	recentAlpha     = 0.2  // weight of the short "recent value" averages reported with an anomaly
	famNetwork      = 3    // a network used in fewer hours than this is unfamiliar
	numNets         = 6
	numClients      = 4
	clientInc       = 2   // new_client's evidence per request from a new client on a new network
	clientIncUA     = 1   // … when the client is known by its User-Agent only (no TLS at warden)
	clientHours     = 3   // … once the principal has been active in this many hours (from 1 at a rare hour)
	youngAllow      = 1.5 // … and, before, at an hour e^1.5 times rarer than in a uniform day by its kind's profile
	youngNetAllow   = 2   // a young principal's new network counts from an hour e^2 times rarer (new_network_off_hours)
	runHours        = 3   // a new network or client counts when its run of consecutive active hours ends, or after this many
	numModels       = 4
	numTools        = 4
	numPrompts      = 4
	hourCap         = 4000          // hour counts are halved when one reaches this
	driveFrac       = 0.15          // a feature drives an anomaly when its score is at least this fraction of the threshold
	hourAllowance   = 0.3           // an hour must be a quarter rarer than in a uniform day to count
	suspectSlow     = 4             // baselines learn this many times slower while their feature gathers evidence
	frozenRisk      = 0.5           // baselines do not learn while the principal's risk is at least this
	suspectFrac     = 0.25          // … once the score of the feature reaches this fraction of the threshold
	hoursAfter      = 3 * 24 * 3600 // the hours of activity are judged once a principal has been seen for 3 days
	hourPriorN      = 10            // the population's hours profile counts as this many active hours
	hourSmooth      = 0.02          // and a uniform day as this many per hour
	accessAllow     = 1.5           // an hour must be e^1.5 times rarer than in a uniform day to add to new_network_off_hours
	knownClientPace = 0.5           // … at this fraction of its pace from a client the principal has used before
	popHoursAt      = 24            // a principal's hours join its kind's profile when it has been active in this many
)

// Observation is what the engine learns from one finished exchange. The
// strings are only read during Observe (and copied into an anomaly).
type Observation struct {
	At         time.Time  // when the exchange started; zero: now
	Kind       string     // principal kind; "" with ID "" for unauthenticated requests
	ID         string     // principal id
	Credential string     // non-secret credential id, for reports
	RequestID  string     // for reports
	Source     netip.Addr // the TCP peer
	Model      string     // "" when none
	Tool       string     // "" when none
	Status     int        // the status the client got
	// PromptTokens and CompletionTokens are the exchange's token usage
	// (both 0: not counted; the token features are skipped).
	PromptTokens     int64
	CompletionTokens int64
	BytesOut         int64  // response bytes sent to the client
	Prompt           uint64 // Sketch of the newest prompt; 0: none
	// ClientHello is the fingerprint of the client's TLS ClientHello
	// (gateway.HelloFingerprint): the client software. 0: none (a
	// plaintext listener); then UserAgent identifies the client, if set.
	ClientHello uint64
	UserAgent   string
}

// Options configure an Engine; zero values take the defaults.
type Options struct {
	// Threshold is the anomaly score (a sum of per-feature CUSUM
	// statistics, in log-likelihood and robust-deviation units) at which an
	// anomaly is reported. Default 13.
	Threshold float64
	// Warmup is how many requests a principal makes before the normal
	// threshold applies; before, only twice the threshold alarms. Default 50.
	Warmup int
	// Window is the baseline's memory in observations. Default 500.
	Window int
	// HalfLife is how fast risk decays. Default 1h.
	HalfLife time.Duration
	// Cooldown is the least time between two anomalies of one principal.
	// Default 1m.
	Cooldown time.Duration
	// MaxPrincipals bounds the principals with a baseline; at the bound
	// the least recently seen (approximately) is evicted. Default 1<<20.
	MaxPrincipals int
	// MaxNetworks bounds the unauthenticated source networks kept.
	// Default 65536; 0 after defaults is impossible, -1 turns them off.
	MaxNetworks int
	// IdleTTL evicts baselines not seen for this long (Sweep). Default 30 days.
	IdleTTL time.Duration
	// Now is the clock for risk decay. Default time.Now.
	Now func() time.Time

	// QueueSize bounds the anomalies waiting for Run. Default 4096; a full
	// queue drops the report (counted in Stats().Dropped and the drop hook),
	// never the risk, which is raised synchronously.
	QueueSize int
	// Record writes an anomaly's audit record; called by Run.
	Record func(ctx context.Context, a Anomaly) error
	// Responder acts on anomalies; called by Run after Record. nil: none.
	Responder Responder
	// Hooks observe the engine (metrics); any may be nil.
	Hooks  Hooks
	Logger *slog.Logger
}

// Hooks are told about the engine's events, for metrics.
type Hooks struct {
	Anomaly     func(a *Anomaly) // from Observe, after the risk is raised
	Dropped     func()           // an anomaly report could not be queued
	RecordError func()           // Record failed
	RespondErr  func()           // Responder failed
	Evicted     func()           // a baseline was evicted to make room
}

// Defaults.
const (
	DefaultThreshold     = 13
	DefaultWarmup        = 30
	DefaultWindow        = 500
	DefaultHalfLife      = time.Hour
	DefaultCooldown      = time.Minute
	DefaultMaxPrincipals = 1 << 20
	DefaultMaxNetworks   = 1 << 16
	DefaultIdleTTL       = 30 * 24 * time.Hour
	DefaultQueueSize     = 4096
)

func (o *Options) defaults() error {
	if o.Threshold == 0 {
		o.Threshold = DefaultThreshold
	}
	if o.Warmup == 0 {
		o.Warmup = DefaultWarmup
	}
	if o.Window == 0 {
		o.Window = DefaultWindow
	}
	if o.HalfLife == 0 {
		o.HalfLife = DefaultHalfLife
	}
	if o.Cooldown == 0 {
		o.Cooldown = DefaultCooldown
	}
	if o.MaxPrincipals == 0 {
		o.MaxPrincipals = DefaultMaxPrincipals
	}
	if o.MaxNetworks == 0 {
		o.MaxNetworks = DefaultMaxNetworks
	}
	if o.IdleTTL == 0 {
		o.IdleTTL = DefaultIdleTTL
	}
	if o.QueueSize == 0 {
		o.QueueSize = DefaultQueueSize
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case !(o.Threshold > 0) || math.IsInf(o.Threshold, 0):
		return fmt.Errorf("behavior: threshold %v must be a positive number", o.Threshold)
	case o.Warmup < 0 || o.Warmup > 1<<16-1:
		return fmt.Errorf("behavior: warmup %d must be between 0 and 65535", o.Warmup)
	case o.Window < 2:
		return fmt.Errorf("behavior: window %d must be at least 2", o.Window)
	case o.HalfLife < time.Second:
		return fmt.Errorf("behavior: half-life %s must be at least 1s", o.HalfLife)
	case o.Cooldown < 0:
		return fmt.Errorf("behavior: cooldown %s must not be negative", o.Cooldown)
	case o.MaxPrincipals < 1:
		return fmt.Errorf("behavior: max principals %d must be positive", o.MaxPrincipals)
	case o.MaxNetworks < -1:
		return fmt.Errorf("behavior: max networks %d must be positive (or -1: off)", o.MaxNetworks)
	case o.QueueSize < 1:
		return fmt.Errorf("behavior: queue size %d must be positive", o.QueueSize)
	}
	return nil
}

// prior is a population baseline a new state starts from.
type prior struct {
	cont [numCont]robust
	p    [numRates]float32
}

func staticPrior(kind int) prior {
	p := prior{
		cont: [numCont]robust{
			{L: ln1p(2), D: 0.5},    // requests per active minute
			{L: ln1p(300), D: 0.8},  // prompt tokens
			{L: ln1p(300), D: 0.8},  // completion tokens
			{L: ln1p(2000), D: 0.8}, // response bytes
		},
		p: [numRates]float32{0.05, 0.05, 0.02, 0.02, 0.05, 0.05, 0.1},
	}
	if kind == kindNetwork {
		p.p[bDenials] = 0.3 // unauthenticated traffic is mostly refused
	}
	return p
}

// The users' static hours profile has an evening shoulder this many hours
// after the centre, of this weight relative to the centre's bell.
const (
	eveningAfter  = 6
	eveningWidth  = 1.5
	eveningWeight = 0.3
)

// staticHours is the initial hours profile of a kind, by offset from a
// principal's centre of activity (index 0: the centre hour, 23: an hour
// before it): people and their agents are active for some hours around
// their centre and rarely at the opposite side of the clock; services and
// networks have no such shape.
func staticHours(kind int) [24]float32 {
	var h [24]float32
	var sum float32
	for d := range h {
		v := float32(1)
		if kind == kindUser || kind == kindAgent || kind == kindOther {
			x := float64(min(d, 24-d)) / 3
			v = float32(math.Exp(-x*x/2)) + 0.005
		}
		if kind == kindUser {
			// People also work in the evening, some hours after their
			// centre, and hardly ever in the hours before their day
			// begins: an evening shoulder (without it, a new user's first
			// evening at home looked as rare as a night).
			y := float64(min((d-eveningAfter+24)%24, (eveningAfter-d+24)%24)) / eveningWidth
			v += eveningWeight * float32(math.Exp(-y*y/2))
		}
		h[d] = v
		sum += v
	}
	for d := range h {
		h[d] /= sum
	}
	return h
}

// hourCos and hourSin are the unit vectors of the hours of the day.
var hourCos, hourSin = func() (c, s [24]float64) {
	for h := range c {
		c[h], s[h] = math.Cos(2*math.Pi*float64(h)/24), math.Sin(2*math.Pi*float64(h)/24)
	}
	return
}()

// centre is the circular mean hour of a histogram of active hours, or
// noCentre when it is empty.
func centre(hours *[24]uint16) uint8 {
	var x, y, n float64
	for h, c := range hours {
		x += float64(c) * hourCos[h]
		y += float64(c) * hourSin[h]
		n += float64(c)
	}
	if n < 1 {
		return noCentre
	}
	a := math.Atan2(y, x) * 24 / (2 * math.Pi)
	return uint8(int(math.Round(a)+24) % 24)
}

// state is one principal's (or network's) baseline and scores. It holds no
// pointer, so that a million of them cost the garbage collector nothing.
type state struct {
	key       uint64 // 0: free slot
	lastSeen  int64  // unix seconds
	firstSeen int64  // unix seconds
	lastAlarm int64  // unix seconds; 0: never
	riskAt    int64  // unix nanoseconds of risk
	risk      float32
	n         uint32 // observations
	minute    int32  // unix minute of the current rate bucket
	hourSlot  int32  // unix hour last counted in hours
	minuteN   uint16 // requests in it
	kind      uint8
	netNext   uint8
	promptAt  uint8
	flags     uint8 // flagGraduated

	contN      [numCont]uint16
	rateN      [numRates]uint16
	netMask    uint8 // networks (bits of nets) already counted in the current hour
	hourCentre uint8 // circular mean of the active hours; noCentre while unknown
	clientMask uint8 // clients (bits of clients) used in the current hour
	run        uint8 // consecutive active hours before the current one (at most runHours)
	cont       [numCont]robust
	p          [numRates]float32
	cusum      [numFeatures]float32
	rec        [numFeatures]float32 // recent values, for reports

	hours   [24]uint16
	nets    [numNets]uint32
	netN    [numNets]uint16
	clients [numClients]uint32 // client fingerprints (clientTag)
	clientN [numClients]uint16 // earlier active hours in which each was used
	models  [numModels]uint32
	modelN  [numModels]uint8
	tools   [numTools]uint32
	toolN   [numTools]uint8
	prompts [numPrompts]uint64
}

const (
	flagGraduated = 1 // the warm-up is over
	flagPending   = 2 // the current hour (hourSlot) is to be counted when the next begins
	flagDup       = 4 // the last prompt was a near duplicate of one before it
	flagRareNew   = 8 // the current hour saw a network never used before, at an hour rare for the principal
	noCentre      = 255
)

// StateBytes is the in-memory size of one baseline, without its index entry.
const StateBytes = int(stateSize)

// Engine keeps the baselines, scores observations and keeps risk. It is
// safe for concurrent use; Observe and Risk take one shard lock each.
type Engine struct {
	opt       Options
	threshold float32
	aMin      float32
	seed      maphash.Seed
	salt      uint64
	users     table
	nets      table
	priorMu   sync.RWMutex
	priors    [numKinds]prior
	// hourPop is each kind's profile of active hours relative to a
	// principal's own centre of activity (float32 bits, shares summing to
	// 1): the population prior of the hours histogram, aligned on each
	// principal's circular mean hour, so that it says "10 hours away from
	// where this principal usually works" whatever its time zone.
	hourPop [numKinds][24]atomic.Uint32
	queue   chan Anomaly

	dropped   atomic.Uint64
	anomalies atomic.Uint64
	evicted   atomic.Uint64
	lastDrop  atomic.Int64
}

// New returns an engine with the options' defaults applied.
func New(opt Options) (*Engine, error) {
	if err := opt.defaults(); err != nil {
		return nil, err
	}
	e := &Engine{opt: opt, threshold: float32(opt.Threshold), aMin: 2 / float32(opt.Window+1), seed: maphash.MakeSeed()}
	e.salt = maphash.String(e.seed, "warden-behavior")
	for k := range e.priors {
		e.priors[k] = staticPrior(k)
		for d, v := range staticHours(k) {
			e.hourPop[k][d].Store(math.Float32bits(v))
		}
	}
	e.users.init(opt.MaxPrincipals)
	if opt.MaxNetworks > 0 {
		e.nets.init(opt.MaxNetworks)
	}
	if opt.Record != nil || opt.Responder != nil {
		e.queue = make(chan Anomaly, opt.QueueSize)
	}
	return e, nil
}

// Stats are the engine's counters.
type Stats struct {
	Principals int    // baselines kept for principals
	Networks   int    // baselines kept for unauthenticated source networks
	Anomalies  uint64 // anomalies found
	Dropped    uint64 // anomaly reports dropped because the queue was full
	Evicted    uint64 // baselines evicted to make room
}

// Stats returns the counters.
func (e *Engine) Stats() Stats {
	return Stats{Principals: e.users.len(), Networks: e.nets.len(), Anomalies: e.anomalies.Load(),
		Dropped: e.dropped.Load(), Evicted: e.evicted.Load()}
}

// principalHash is the key of a principal's baseline: a keyed 64-bit hash of
// PrincipalKey(kind, id), never 0. Two principals collide with probability
// about n²/2⁶⁵ (3·10⁻⁸ for a million).
func (e *Engine) principalHash(kind, id string) uint64 {
	h := maphash.String(e.seed, id)
	h = mix64(h ^ maphash.String(e.seed, kind) ^ e.salt)
	return h | 1
}

// prefixKey returns the source network of addr (/24, /48) as a number that
// identifies it; 0 for an invalid address.
func prefixKey(addr netip.Addr) uint64 {
	switch {
	case !addr.IsValid():
		return 0
	case addr.Is4() || addr.Is4In6():
		a := addr.Unmap().As4()
		return 4<<56 | uint64(a[0])<<16 | uint64(a[1])<<8 | uint64(a[2])
	default:
		a := addr.As16()
		return 6<<56 | uint64(a[0])<<40 | uint64(a[1])<<32 | uint64(a[2])<<24 | uint64(a[3])<<16 | uint64(a[4])<<8 | uint64(a[5])
	}
}

// prefixString formats a prefixKey as a CIDR prefix.
func prefixString(k uint64) string {
	switch k >> 56 {
	case 4:
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(k >> 16), byte(k >> 8), byte(k), 0}), 24).String()
	case 6:
		var a [16]byte
		for i := 0; i < 6; i++ {
			a[i] = byte(k >> (40 - 8*i))
		}
		return netip.PrefixFrom(netip.AddrFrom16(a), 48).String()
	}
	return "unknown"
}

// clientTag identifies o's client software: its TLS fingerprint, or
// without one its User-Agent (trivially copied, but all a plaintext
// listener has); 0 when neither is known.
func (e *Engine) clientTag(o *Observation) uint32 {
	switch {
	case o.ClientHello != 0:
		return uint32(mix64(o.ClientHello^e.salt)) | 1
	case o.UserAgent != "":
		return uint32(maphash.String(e.seed, o.UserAgent)>>32) | 1
	}
	return 0
}

// small hashes a model, tool or network into a nonzero 32-bit tag.
func (e *Engine) small(s string) uint32 {
	if s == "" {
		return 0
	}
	return uint32(maphash.String(e.seed, s)) | 1
}

// report is what an alarm captures under the lock, to build the Anomaly
// after it.
type report struct {
	total    float32
	risk     float32
	cusum    [numFeatures]float32
	value    [numFeatures]float64
	baseline [numFeatures]float64
}

// Observe updates the baseline of o's principal (or, unauthenticated, of
// its source network) and scores o against it. When the score crosses the
// threshold it raises the principal's risk at once, queues the anomaly for
// Run (counting a drop when the queue is full) and returns it; otherwise
// it returns nil. It does not allocate unless it returns an anomaly.
func (e *Engine) Observe(o *Observation) *Anomaly {
	at := o.At
	if at.IsZero() {
		at = e.opt.Now()
	}
	var (
		tab    *table
		key    uint64
		kind   int
		netKey = prefixKey(o.Source)
	)
	if o.ID == "" {
		if netKey == 0 || e.opt.MaxNetworks < 0 {
			return nil
		}
		tab, key, kind = &e.nets, mix64(netKey^e.salt)|1, kindNetwork
	} else {
		tab, key, kind = &e.users, e.principalHash(o.Kind, o.ID), kindIndex(o.Kind)
	}
	sh := tab.shard(key)
	var rep report
	sh.mu.Lock()
	st, fresh, evicted := sh.get(tab, key, at.Unix())
	var pr *prior // during warm-up, the population prior the principal is judged against
	if fresh || st.flags&flagGraduated == 0 {
		pr = new(prior) // does not escape: score only reads it
		e.priorMu.RLock()
		*pr = e.priors[kind]
		e.priorMu.RUnlock()
		if fresh {
			st.cont, st.p, st.kind, st.hourCentre = pr.cont, pr.p, uint8(kind), noCentre
		}
	}
	graduated := st.flags&flagGraduated != 0
	alarm := e.score(st, o, at, netKey, pr, &rep)
	if !graduated && st.flags&flagGraduated != 0 && kind != kindOther && st.risk == 0 {
		e.graduate(kind, st)
	}
	sh.mu.Unlock()
	if evicted {
		e.evicted.Add(1)
		if h := e.opt.Hooks.Evicted; h != nil {
			h()
		}
	}
	if !alarm {
		return nil
	}
	return e.alarm(o, at, kind, netKey, &rep)
}

// score updates st with o and reports whether it alarms (filling rep).
//
// During warm-up (pr != nil) the features are judged against the
// population prior pr rather than the principal's own young baseline,
// which would learn an extreme behaviour before it had been judged.
func (e *Engine) score(st *state, o *Observation, at time.Time, netKey uint64, pr *prior, rep *report) bool {
	th := e.threshold
	unix := at.Unix()
	minute := int32(unix / 60)
	hour := int((unix / 3600) % 24)
	if hour < 0 {
		hour += 24
	}
	var inc [numFeatures]float32
	var has [numFeatures]bool
	var cur [numFeatures]float32 // log-scale values of the continuous features

	// Request rate: requests in the current minute, against the baseline of
	// requests per active minute. A finished minute updates the baseline.
	if minute != st.minute {
		if st.minuteN > 0 {
			st.cont[fRate].update(ln1p(int64(st.minuteN)), alpha(st.contN[fRate], priorWeight, e.aMin), contFloor[fRate])
			st.contN[fRate] = satInc(st.contN[fRate])
		}
		st.minute, st.minuteN = minute, 0
	}
	st.minuteN = satInc(st.minuteN)
	cur[fRate], has[fRate] = ln1p(int64(st.minuteN)), true

	ok2xx := o.Status >= 200 && o.Status < 300
	if ok2xx && (o.PromptTokens > 0 || o.CompletionTokens > 0) {
		cur[fTokensIn], has[fTokensIn] = ln1p(o.PromptTokens), true
		cur[fTokensOut], has[fTokensOut] = ln1p(o.CompletionTokens), true
	}
	if ok2xx {
		cur[fBytesOut], has[fBytesOut] = ln1p(o.BytesOut), true
	}
	for c := 0; c < numCont; c++ {
		if has[c] {
			base := st.cont[c]
			if pr != nil {
				base = pr.cont[c]
			}
			inc[c] = min(base.z(cur[c], contFloor[c]), contZCap[c]) - contAllow[c]
		}
	}

	// Events with a baseline rate.
	var ev [numRates]bool
	var hasEv [numRates]bool
	if m := e.small(o.Model); m != 0 {
		ev[bModels], hasEv[bModels] = seen(st.models[:], st.modelN[:], m), true
	}
	if t := e.small(o.Tool); t != 0 {
		ev[bTools], hasEv[bTools] = seen(st.tools[:], st.toolN[:], t), true
	}
	denied := o.Status == 401 || o.Status == 403 || o.Status == 429
	ev[bDenials], hasEv[bDenials] = denied, true
	ev[bErrors], hasEv[bErrors] = !denied && o.Status >= 400, true
	// Networks and hours count once per active hour, when the next active
	// hour begins: a long session does not make its network familiar or
	// its hour usual, and the current hour does not vouch for itself. A
	// network or client never used before is not counted until the run of
	// consecutive active hours it appeared in ends (at most runHours): a
	// session that began in the last minutes of an hour must not vouch for
	// itself in the next (only while there is evidence that they are
	// someone else's: a young principal's only network is counted as
	// usual). Nothing is counted while the principal is
	// suspect: an attack from a new network at night must make neither
	// familiar.
	if slot := int32(unix / 3600); slot != st.hourSlot && st.kind != kindNetwork {
		suspect := st.cusum[fAccess]+st.cusum[fClient] >= suspectFrac*th ||
			st.risk >= frozenRisk && decay(st.risk, st.riskAt, at.UnixNano(), e.opt.HalfLife) >= frozenRisk
		cont := slot == st.hourSlot+1 && st.run < runHours
		var carryNet, carryClient uint8
		if st.flags&flagPending != 0 && !suspect {
			// Carried: evidence against the hour's new network or client,
			// or a new network at a rare hour (evidence that the warm-up,
			// which does not judge networks, has not gathered).
			carry := st.cusum[fAccess]+st.cusum[fClient] > 0 || st.flags&flagRareNew != 0
			carryNet, carryClient = e.countHour(st, cont && carry)
		}
		st.flags &^= flagRareNew
		if cont {
			st.run++
		} else {
			st.run = 0
		}
		st.hourSlot, st.netMask, st.clientMask = slot, carryNet, carryClient
		st.flags |= flagPending
	}
	known := -1 // previous active hours with this network; -1: no network
	active := sum24(&st.hours)
	if st.kind != kindNetwork && netKey != 0 {
		nk := uint32(mix64(netKey^e.salt)) | 1
		i := slices.Index(st.nets[:], nk)
		if i < 0 { // replace the least used network
			i = int(st.netNext % numNets)
			for j := range st.nets {
				if st.nets[j] == 0 || st.netN[j] < st.netN[i] {
					i = j
				}
			}
			st.nets[i], st.netN[i] = nk, 0
			st.netMask &^= 1 << i
			st.netNext++
		}
		// A network used in fewer than famNetwork earlier active hours is
		// unfamiliar — unless it was used in all of them (a young
		// principal's only network).
		known = int(st.netN[i])
		if known >= active {
			known = famNetwork
		}
		st.netMask |= 1 << i
		ev[bNetwork], hasEv[bNetwork] = known < famNetwork, true
	}
	// The client software (its TLS fingerprint): how many earlier active
	// hours used it, like networks; a client used in all of them is known.
	knownClient := -1 // -1: no fingerprint
	if ct := e.clientTag(o); ct != 0 && st.kind != kindNetwork {
		i := slices.Index(st.clients[:], ct)
		if i < 0 { // replace the least used client
			i = 0
			for j := range st.clients {
				if st.clients[j] == 0 {
					i = j
					break
				}
				if st.clientN[j] < st.clientN[i] {
					i = j
				}
			}
			st.clients[i], st.clientN[i] = ct, 0
			st.clientMask &^= 1 << i
		}
		if knownClient = int(st.clientN[i]); knownClient >= active {
			knownClient = 1
		}
		st.clientMask |= 1 << i
	}
	if o.Prompt != 0 {
		best := 0
		for _, s := range st.prompts {
			if s != 0 {
				best = max(best, sketchMatches(s, o.Prompt))
			}
		}
		// Near duplicates are judged by what came before: after a near
		// duplicate, by the principal's rate of runs of them (a service
		// that works through one template at a time has long runs, a user
		// who edits and resends a prompt short ones).
		b := bPrompt
		if st.flags&flagDup != 0 {
			b = bPromptRun
		}
		dup := best >= nearDupBins
		ev[b], hasEv[b] = dup, true
		if st.flags &^= flagDup; dup {
			st.flags |= flagDup
		}
		st.prompts[st.promptAt%numPrompts] = o.Prompt
		st.promptAt++
	}
	for b := 0; b < numRates; b++ {
		if hasEv[b] {
			p0 := st.p[b]
			if pr != nil {
				p0 = pr.p[b]
			}
			p0 = min(max(p0, pMin), pMax)
			p1 := altRate(p0)
			if rateFeature[b] == fPrompt {
				p1 = altRateBy(p0, promptAltFactor)
			}
			inc[rateFeature[b]], has[rateFeature[b]] = bernoulliStep(ev[b], p0, p1), true
			if ev[b] && p0 >= pSat {
				// The event is already the rule: it cannot rise enough to
				// mean anything, and a baseline a little below the true
				// rate (it always is, for an event that always happens)
				// would make the statistic drift upwards. It is taken as
				// a little evidence that nothing changed, so that what was
				// gathered while the baseline caught up drains away.
				inc[rateFeature[b]] = satStep
			}
		}
	}

	// Hour of day: how much rarer this hour is than a uniform day, from the
	// principal's histogram of active hours (each hour of each day counts
	// once, so that a 24/7 service with a diurnal rate is uniform) smoothed
	// over the neighbouring hours and shrunk towards its kind's profile
	// aligned on the principal's centre of activity: a principal with a
	// short history is judged mostly by where people of its kind are active
	// relative to their own working hours, one with a long history by its own.
	var hourShare float32
	mature := unix-st.firstSeen >= hoursAfter
	if st.kind != kindNetwork && mature {
		var total float32
		for _, c := range st.hours {
			total += float32(c)
		}
		c := float32(st.hours[(hour+23)%24]) + 2*float32(st.hours[hour]) + float32(st.hours[(hour+1)%24])
		pop := float32(1.0 / 24)
		if st.hourCentre != noCentre {
			pop = math.Float32frombits(e.hourPop[st.kind][(hour-int(st.hourCentre)+24)%24].Load())
		}
		hourShare = (c/4 + hourSmooth + hourPriorN*pop) / (total + 24*hourSmooth + hourPriorN)
		rarity := fastLn(1 / (24 * hourShare))
		inc[fHours], has[fHours] = min(max(rarity-hourAllowance, -1), 3), true
		// New network and unusual hour, jointly: evidence accumulates
		// while requests come from a network never used before in another
		// hour, at an hour rarer than 1/e of uniform for this principal.
		if known >= 0 {
			inc[fAccess], has[fAccess] = -1, true
			if known == 0 {
				inc[fAccess] = min(max(rarity-accessAllow, -1), 3)
				if knownClient > 0 && inc[fAccess] > 0 {
					// The principal's own client: most often its owner
					// (travelling, at home in the evening), whose session
					// is short; an attacker who replays the client keeps
					// going. Evidence accrues at half the pace.
					inc[fAccess] *= knownClientPace
				}
			}
		}
	} else if st.kind != kindNetwork && known >= 0 && st.hourCentre != noCentre {
		// A principal seen for less than 3 days has no hours of its own to
		// speak of, but its kind's profile aligned on the hours it has
		// been active in says which hours are far from its day: a new
		// network there counts (from e^2 times rarer than a uniform day; a
		// young principal's new client on a new network from e^1.5: its
		// own client is more often its owner). Without it, a credential
		// stolen in its first days and used from the victim's own client
		// software was judged by nothing but volume.
		rarity := e.youngRarity(st, hour)
		hourShare = float32(math.Exp(-float64(rarity))) / 24
		inc[fAccess], has[fAccess] = -1, true
		if known == 0 {
			inc[fAccess] = min(max(rarity-youngNetAllow, -1), 3)
			if knownClient > 0 && inc[fAccess] > 0 {
				inc[fAccess] *= knownClientPace
			}
		}
	}
	if known == 0 && inc[fAccess] > 0 {
		st.flags |= flagRareNew
	}
	// New client on a new network: the stolen credential used from the
	// attacker's own machine. Either alone is common (a browser update, a
	// new laptop at the office; a café, a trip with one's own laptop);
	// both at once, request after request, are not. Unlike the hours this
	// needs no days of history, only a few active hours to have seen the
	// principal's networks and clients in, or one or two after the warm-up
	// (it is not judged during the warm-up either, see below).
	if known >= 0 && knownClient >= 0 && active >= 1 && (active >= clientHours || st.flags&flagGraduated != 0) {
		inc[fClient], has[fClient] = -1, true
		// A principal with only one or two active hours has no habits to
		// speak of: a new client on a new network then counts only at an
		// hour its kind's profile, aligned on those hours, makes rare.
		young := active < clientHours && e.youngRarity(st, hour) <= youngAllow
		if known == 0 && knownClient == 0 && !young {
			inc[fClient] = clientInc
			if o.ClientHello == 0 { // a User-Agent: it changes with every update
				inc[fClient] = clientIncUA
			}
		}
	}

	// CUSUM per feature, capped; the anomaly score is their sum. During
	// warm-up only the features judged against the population prior count
	// (novelty, hours, networks and prompt habits cannot be judged before
	// there is a history), and the evidence is dropped when it ends.
	warm := st.flags&flagGraduated == 0
	if warm && (st.n >= uint32(e.opt.Warmup) || mature && st.n >= uint32(e.opt.Warmup/3)) {
		// The warm-up ends after Warmup requests, or after 3 days for a
		// principal that made a third of them: from then on it is judged
		// against its own baseline (shrunk towards the prior it started
		// from in proportion to its history).
		warm = false
		st.flags |= flagGraduated
		st.cusum = [numFeatures]float32{}
	}
	var total, soft float32
	for f := 0; f < numFeatures; f++ {
		if has[f] && (!warm || warmupFeature[f] && (f != fPrompt || st.kind == kindUser)) {
			limit := strongCap * th
			if softFeature[f] {
				limit = softCapFrac * th
			}
			st.cusum[f] = min(max(st.cusum[f]+inc[f], 0), limit)
		}
		if softFeature[f] {
			soft += st.cusum[f]
		} else {
			total += st.cusum[f]
		}
	}
	total += min(soft, softSumFrac*th)

	// Recent values, for reports.
	st.rec[fRate] = float32(st.minuteN)
	if has[fTokensIn] {
		st.rec[fTokensIn] += recentAlpha * (float32(o.PromptTokens) - st.rec[fTokensIn])
		st.rec[fTokensOut] += recentAlpha * (float32(o.CompletionTokens) - st.rec[fTokensOut])
	}
	if has[fBytesOut] {
		st.rec[fBytesOut] += recentAlpha * (float32(o.BytesOut) - st.rec[fBytesOut])
	}
	for b := 0; b < numRates; b++ {
		if hasEv[b] {
			st.rec[rateFeature[b]] += recentAlpha * (b2f(ev[b]) - st.rec[rateFeature[b]])
		}
	}
	st.rec[fHours] = float32(hour)
	st.rec[fAccess] = float32(hour)
	if has[fClient] {
		st.rec[fClient] += recentAlpha * (b2f(inc[fClient] > 0) - st.rec[fClient])
	}

	alarm := false
	if lim := th * warmupMult; total >= th && (!warm || total >= lim) &&
		(st.lastAlarm == 0 || absInt(unix-st.lastAlarm) >= int64(e.opt.Cooldown/time.Second)) {
		alarm = true
		rep.total, rep.cusum = total, st.cusum
		for f := 0; f < numFeatures; f++ {
			rep.value[f] = float64(st.rec[f])
		}
		for c := 0; c < numCont; c++ {
			rep.baseline[c] = expm1(st.cont[c].L)
			if has[c] {
				rep.value[c] = expm1(cur[c])
			}
		}
		rep.value[fRate] = float64(st.minuteN)
		for b := 0; b < numRates; b++ {
			if hasEv[b] || b != bPromptRun && b != bPrompt {
				rep.baseline[rateFeature[b]] = float64(st.p[b])
			}
		}
		rep.baseline[fHours] = float64(hourShare)
		rep.baseline[fAccess] = float64(hourShare)
		for i, c := range st.clients {
			if c != 0 && st.clientN[i] > 0 {
				rep.baseline[fClient]++ // known clients
			}
		}
		score := total / (total + th)
		r := decay(st.risk, st.riskAt, at.UnixNano(), e.opt.HalfLife)
		r = 1 - (1-r)*(1-score)
		st.risk, st.riskAt, st.lastAlarm = r, at.UnixNano(), unix
		rep.risk = r
		st.cusum = [numFeatures]float32{}
	}

	// Baselines learn from the observation (winsorized: an outlier moves
	// them by a bounded step).
	// A principal under suspicion (risk at least 0.5) does not teach its
	// baselines: the attack that raised the risk must not become normal.
	if st.risk >= frozenRisk && decay(st.risk, st.riskAt, at.UnixNano(), e.opt.HalfLife) >= frozenRisk {
		st.n = min(st.n+1, math.MaxUint32)
		return alarm
	}
	// While a feature has gathered evidence, its baseline learns at a quarter of
	// the pace, so that an attack does not become its own baseline before it
	// is detected.
	for c := fTokensIn; c < numCont; c++ {
		if has[c] {
			a := alpha(st.contN[c], priorWeight, e.aMin)
			if st.cusum[c] >= suspectFrac*th {
				a /= suspectSlow
			}
			st.cont[c].update(cur[c], a, contFloor[c])
			st.contN[c] = satInc(st.contN[c])
		}
	}
	for b := 0; b < numRates; b++ {
		if hasEv[b] {
			// (not slowed like the continuous baselines: a rate that
			// learns events more slowly than non-events is biased low —
			// except the rate of runs of near duplicates, learnt from the
			// few requests that follow one: a probing run would soon
			// become its own baseline)
			n := st.rateN[b]
			if b == bPromptRun && st.flags&flagGraduated != 0 {
				// The rate of runs learns from the few requests that
				// follow a near duplicate, but once the warm-up is over
				// at the pace of the principal's other prompts when they
				// are more: a probing run must not become its own
				// baseline within a few requests.
				n = max(n, st.rateN[bPrompt])
			}
			st.p[b] += alpha(n, priorWeight, e.aMin) * (b2f(ev[b]) - st.p[b])
			st.rateN[b] = satInc(st.rateN[b])
		}
	}
	if st.n < math.MaxUint32 {
		st.n++
	}
	return alarm
}

// graduate folds a principal that just finished its warm-up into its
// kind's population prior (an exponential average over principals), so
// that new principals start from what principals of their kind do.
func (e *Engine) graduate(kind int, st *state) {
	const beta = 0.02
	e.priorMu.Lock()
	defer e.priorMu.Unlock()
	pr := &e.priors[kind]
	for c := range pr.cont {
		pr.cont[c].L += beta * (st.cont[c].L - pr.cont[c].L)
		pr.cont[c].D += beta * (st.cont[c].D - pr.cont[c].D)
	}
	for b := range pr.p {
		pr.p[b] += beta * (st.p[b] - pr.p[b])
	}
}

// youngRarity is how rare hour is for a principal with few active hours:
// by its kind's profile aligned on their circular mean, smoothed like the
// hours histogram.
func (e *Engine) youngRarity(st *state, hour int) float32 {
	if st.hourCentre == noCentre {
		return 0
	}
	var total float32
	for _, c := range st.hours {
		total += float32(c)
	}
	c := float32(st.hours[(hour+23)%24]) + 2*float32(st.hours[hour]) + float32(st.hours[(hour+1)%24])
	pop := math.Float32frombits(e.hourPop[st.kind][(hour-int(st.hourCentre)+24)%24].Load())
	share := (c/4 + hourSmooth + hourPriorN*pop) / (total + 24*hourSmooth + hourPriorN)
	return fastLn(1 / (24 * share))
}

// countHour counts the principal's last active hour (st.hourSlot) in its
// hours histogram and the networks and clients it used then in their use
// counts. With carry (the run of active hours goes on), networks and
// clients never counted before are left out and returned, to be counted
// with the next hour.
func (e *Engine) countHour(st *state, carry bool) (carryNet, carryClient uint8) {
	hour := int(st.hourSlot % 24)
	if hour < 0 {
		hour += 24
	}
	if st.hours[hour]++; st.hours[hour] >= hourCap {
		for i := range st.hours {
			st.hours[i] /= 2
		}
	}
	for i := range st.nets {
		if st.netMask&(1<<i) != 0 && st.nets[i] != 0 {
			if carry && st.netN[i] == 0 {
				carryNet |= 1 << i
				continue
			}
			if st.netN[i] == 1<<16-1 {
				for j := range st.netN {
					st.netN[j] /= 2
				}
			}
			st.netN[i]++
		}
	}
	for i := range st.clients {
		if st.clientMask&(1<<i) != 0 && st.clients[i] != 0 {
			if carry && st.clientN[i] == 0 {
				carryClient |= 1 << i
				continue
			}
			if st.clientN[i] == 1<<16-1 {
				for j := range st.clientN {
					st.clientN[j] /= 2
				}
			}
			st.clientN[i]++
		}
	}
	st.hourCentre = centre(&st.hours)
	if sum24(&st.hours) == popHoursAt && st.risk == 0 && st.hourCentre != noCentre && st.kind < kindNetwork {
		e.learnHours(int(st.kind), st)
	}
	return carryNet, carryClient
}

// learnHours folds the hours of a principal, aligned on its centre, into
// its kind's profile (an exponential average over principals).
func (e *Engine) learnHours(kind int, st *state) {
	const beta = 0.05
	total := float32(sum24(&st.hours))
	e.priorMu.Lock()
	defer e.priorMu.Unlock()
	for d := range e.hourPop[kind] {
		v := math.Float32frombits(e.hourPop[kind][d].Load())
		v += beta * (float32(st.hours[(int(st.hourCentre)+d)%24])/total - v)
		e.hourPop[kind][d].Store(math.Float32bits(v))
	}
}

func sum24(h *[24]uint16) int {
	n := 0
	for _, c := range h {
		n += int(c)
	}
	return n
}

func absInt(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

// alarm builds, counts and queues the anomaly of rep.
func (e *Engine) alarm(o *Observation, at time.Time, kind int, netKey uint64, rep *report) *Anomaly {
	th := e.threshold
	a := &Anomaly{
		Kind: o.Kind, ID: o.ID, Credential: o.Credential, At: at, RequestID: o.RequestID,
		Score: float64(rep.total / (rep.total + th)), Risk: float64(rep.risk),
	}
	if kind == kindNetwork {
		a.Kind, a.ID = KindNetwork, prefixString(netKey)
	}
	a.Principal = PrincipalKey(a.Kind, a.ID)
	for f := 0; f < numFeatures; f++ {
		if rep.cusum[f] >= driveFrac*th {
			a.Features = append(a.Features, Feature{Name: featureNames[f], Value: round3(rep.value[f]),
				Baseline: round3(rep.baseline[f]), Score: round3(float64(rep.cusum[f]))})
		}
	}
	slices.SortStableFunc(a.Features, func(x, y Feature) int {
		switch {
		case x.Score > y.Score:
			return -1
		case x.Score < y.Score:
			return 1
		}
		return 0
	})
	a.Reason = reason(a.Features)
	e.anomalies.Add(1)
	if h := e.opt.Hooks.Anomaly; h != nil {
		h(a)
	}
	if e.queue != nil {
		select {
		case e.queue <- *a:
		default:
			e.dropped.Add(1)
			if h := e.opt.Hooks.Dropped; h != nil {
				h()
			}
			if now := time.Now().UnixNano(); now-e.lastDrop.Load() > int64(time.Second) {
				e.lastDrop.Store(now)
				e.opt.Logger.Error("behavior: anomaly queue full; report dropped (the risk was raised)",
					"principal", a.Principal, "reason", a.Reason)
			}
		}
	}
	return a
}

// reason is the one-line summary of the driving features.
func reason(fs []Feature) string {
	var b strings.Builder
	for i, f := range fs {
		if i == 4 {
			fmt.Fprintf(&b, "; +%d more", len(fs)-i)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		switch f.Name {
		case "request_rate":
			fmt.Fprintf(&b, "%s %.0f/min vs %.1f", f.Name, f.Value, f.Baseline)
		case "tokens_in", "tokens_out", "response_bytes":
			fmt.Fprintf(&b, "%s %.0f vs %.0f", f.Name, f.Value, f.Baseline)
		case "off_hours":
			fmt.Fprintf(&b, "off_hours %02.0f:00 UTC (%.1f%% of activity)", f.Value, 100*f.Baseline)
		case "new_network_off_hours":
			fmt.Fprintf(&b, "new network at %02.0f:00 UTC (%.1f%% of activity)", f.Value, 100*f.Baseline)
		case "new_client":
			fmt.Fprintf(&b, "new client on a new network (%.0f%% of recent requests; %.0f known clients)", 100*f.Value, f.Baseline)
		default:
			fmt.Fprintf(&b, "%s %.2f vs %.2f", f.Name, f.Value, f.Baseline)
		}
	}
	if b.Len() == 0 {
		return "several small deviations"
	}
	return b.String()
}

func round3(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0
	}
	return math.Round(x*1000) / 1000
}

// Risk returns a principal's current risk, 0..1: raised by each anomaly
// (r ← 1-(1-r)(1-score)) and halved every half-life since. The assess
// stage passes the principal id without its kind; the highest risk of the
// id under any kind is returned.
func (e *Engine) Risk(principalID string) float64 {
	now := e.opt.Now().UnixNano()
	var r float32
	for _, kind := range kindNames[:kindNetwork] {
		r = max(r, e.riskOf(e.principalHash(kind, principalID), now))
	}
	return float64(r)
}

// RiskOf is Risk for one kind.
func (e *Engine) RiskOf(kind, id string) float64 {
	return float64(e.riskOf(e.principalHash(kind, id), e.opt.Now().UnixNano()))
}

func (e *Engine) riskOf(key uint64, now int64) float32 {
	sh := e.users.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	i, ok := sh.idx[key]
	if !ok {
		return 0
	}
	st := sh.at(i)
	return decay(st.risk, st.riskAt, now, e.opt.HalfLife)
}

// decay is risk r set at time at, halved every half-life until now.
func decay(r float32, at, now int64, halfLife time.Duration) float32 {
	if r <= 0 || now <= at {
		return max(r, 0)
	}
	return r * float32(math.Exp2(-float64(now-at)/float64(halfLife)))
}

// Run hands queued anomalies to Record and then the Responder until ctx
// ends. Errors are logged and counted; Run never stops on them.
func (e *Engine) Run(ctx context.Context) {
	if e.queue == nil {
		<-ctx.Done()
		return
	}
	sweep := time.NewTicker(time.Minute)
	defer sweep.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-sweep.C:
			e.Sweep(e.opt.Now())
		case a := <-e.queue:
			e.deliver(ctx, a)
		}
	}
}

func (e *Engine) deliver(ctx context.Context, a Anomaly) {
	if e.opt.Record != nil {
		if err := e.opt.Record(ctx, a); err != nil && ctx.Err() == nil {
			if h := e.opt.Hooks.RecordError; h != nil {
				h()
			}
			e.opt.Logger.Error("behavior: cannot record anomaly", "principal", a.Principal, "reason", a.Reason, "err", err)
		}
	}
	if e.opt.Responder != nil {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := safeRespond(rctx, e.opt.Responder, a)
		cancel()
		if err != nil && ctx.Err() == nil {
			if h := e.opt.Hooks.RespondErr; h != nil {
				h()
			}
			e.opt.Logger.Error("behavior: responder failed", "principal", a.Principal, "err", err)
		}
	}
}

// safeRespond calls r, turning a panic into an error: a faulty responder
// must not stop the engine's goroutine.
func safeRespond(ctx context.Context, r Responder, a Anomaly) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("responder panicked: %v", p)
		}
	}()
	return r.Respond(ctx, a)
}

// Sweep evicts baselines not seen for IdleTTL before now.
func (e *Engine) Sweep(now time.Time) {
	cutoff := now.Add(-e.opt.IdleTTL).Unix()
	for _, t := range []*table{&e.users, &e.nets} {
		n := t.sweep(cutoff)
		e.evicted.Add(uint64(n))
	}
}

// seen looks tag up in a small set with use counts and reports whether it
// is new there; a new tag replaces the least used one. Counts are halved
// when one saturates, so that the set follows current habits.
func seen(tags []uint32, counts []uint8, tag uint32) (isNew bool) {
	i := slices.Index(tags, tag)
	if i < 0 {
		isNew, i = true, 0
		for j := range tags {
			if tags[j] == 0 || counts[j] < counts[i] {
				i = j
				if tags[j] == 0 {
					break
				}
			}
		}
		tags[i], counts[i] = tag, 0
	}
	if counts[i] == 255 {
		for j := range counts {
			counts[j] /= 2
		}
	}
	counts[i]++
	return isNew
}

func b2f(b bool) float32 {
	if b {
		return 1
	}
	return 0
}

func satInc[T uint16 | uint32](x T) T {
	if x+1 == 0 {
		return x
	}
	return x + 1
}
