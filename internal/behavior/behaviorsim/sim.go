// Package behaviorsim replays synthetic traffic through the behaviour
// engine with a simulated clock: benign traffic from many principals of
// different kinds, with five attacks injected on some of them. It measures
// per attack the detection rate and the requests until detection, and the
// false alarms per 10,000 benign requests. It is the evaluation behind
// bench/behavior and the engine's detection tests.
//
// Every principal uses client software (users 1–3 clients, services one,
// agents one or two), drawn from a catalogue of builds with Zipf
// popularity; clients are updated (a new User-Agent, every third update a
// new TLS ClientHello) and users occasionally get a new device; travellers
// keep their clients. The attacks other than the stolen credential come
// from the principal's own client; the stolen credential from the client
// Config.StolenClient says.
package behaviorsim

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/warden-ai/warden/internal/behavior"
)

// Attack kinds.
const (
	Extraction   = "model_extraction"
	Exfiltration = "data_exfiltration"
	Stolen       = "stolen_credential"
	DenialSpike  = "denial_spike"
	SlowProbe    = "slow_low_probing"
)

// Attacks lists the attack kinds in report order.
var Attacks = []string{Extraction, Exfiltration, Stolen, DenialSpike, SlowProbe}

// Config is one simulation run.
type Config struct {
	Seed       uint64
	Principals int      // default 500
	Days       int      // default 14; attacks start from day 4
	AttacksPer int      // instances of each attack; default 20; 0 with NoAttacks
	NoAttacks  bool     // benign traffic only
	Only       []string // attack kinds to inject (default all)
	Engine     behavior.Options
	// Client is what the engine learns of the client software: ClientTLS
	// (default: the TLS ClientHello fingerprint, and the User-Agent),
	// ClientUA (a plaintext listener: the User-Agent only) or ClientOff
	// (neither: the engine as it was before it knew clients).
	Client string
	// StolenClient is the client a stolen credential is used from:
	// StolenNew (default: a client the principal never used),
	// StolenUA (a new client that copies the victim's User-Agent),
	// StolenReplay (the victim's own TLS fingerprint and User-Agent) or
	// StolenPopulation (a client drawn from the population by popularity,
	// which is the victim's by chance as often as its build is common).
	StolenClient string
	// StolenAt is when a stolen credential is used: StolenNight (default:
	// 01:00–04:00 of the owner's time zone, while the owner sleeps) or
	// StolenDay (during the owner's office hours, often while the owner
	// is also at work from the office network: concurrent use).
	StolenAt string
	// StolenUsage is how the stolen credential is used: StolenMimic
	// (default: like its owner — the owner's models, prompt and output
	// sizes, error rates and prompt style, the hardest case) or StolenOwn
	// (with the attacker's own habits: a user profile drawn like any
	// other, its own models, sizes and prompts).
	StolenUsage string
	// Trace, when set, names a principal whose requests (with its risk
	// and the anomalies they raise) are written to TraceOut: a diagnostic.
	Trace    string
	TraceOut io.Writer
}

// Client signals and stolen-credential client variants (Config).
const (
	ClientTLS = "tls"
	ClientUA  = "ua"
	ClientOff = "off"

	StolenNew        = "new"
	StolenUA         = "ua"
	StolenReplay     = "replay"
	StolenPopulation = "population"

	StolenNight = "night"
	StolenDay   = "day"

	StolenMimic = "mimic"
	StolenOwn   = "own"
)

// Result is what a run measured.
type Result struct {
	Config           Config
	Requests         int // all requests replayed
	BenignRequests   int
	FalseAlarms      int
	FalseAlarmsBy    map[string]int // by principal kind
	FalseAlarmSample []string       // reasons of the first false alarms
	Attacks          map[string]*AttackResult
	Elapsed          time.Duration
	Principals       int
	// FalseAlarmsByFeatures counts false alarms by their driving features
	// (sorted, joined by "+") and the principal's circumstance.
	FalseAlarmsByFeatures map[string]int
	// Misses describe the attack instances not detected within 50 of
	// their requests: attack, principal and its profile.
	Misses []string
	// FalseAlarmPrincipals is how many distinct principals had false
	// alarms (a principal may alarm several times, at most once per
	// cooldown).
	FalseAlarmPrincipals int
}

// AttackResult is the outcome of the instances of one attack.
type AttackResult struct {
	Instances int
	Detected  int
	// Until are the attack requests sent up to and including detection,
	// one per detected instance.
	Until    []int
	Features map[string]int // driving features of the detections
	// Concurrent is how many instances ran while the principal's owner
	// was also active (a benign request of the principal between the
	// attack's first and last request).
	Concurrent int
}

// FalseAlarmsPer10k is false alarms per 10,000 benign requests.
func (r *Result) FalseAlarmsPer10k() float64 {
	if r.BenignRequests == 0 {
		return 0
	}
	return float64(r.FalseAlarms) * 1e4 / float64(r.BenignRequests)
}

// Rate is the detection rate.
func (a *AttackResult) Rate() float64 {
	if a.Instances == 0 {
		return 0
	}
	return float64(a.Detected) / float64(a.Instances)
}

// Median and Max of Until (0 when nothing was detected).
func (a *AttackResult) Median() int {
	if len(a.Until) == 0 {
		return 0
	}
	s := slices.Clone(a.Until)
	slices.Sort(s)
	return s[len(s)/2]
}

// Within is how many instances were detected within n of their requests.
func (a *AttackResult) Within(n int) int {
	k := 0
	for _, u := range a.Until {
		if u <= n {
			k++
		}
	}
	return k
}

// Max is the largest number of requests until detection.
func (a *AttackResult) Max() int {
	if len(a.Until) == 0 {
		return 0
	}
	return slices.Max(a.Until)
}

// req is one simulated request.
type req struct {
	t         int64 // unix nanoseconds
	p         int32 // principal index
	attack    int16 // attack instance index + 1; 0: benign
	status    int16
	model     uint16
	tool      uint16
	net       uint32 // IPv4 /24 number
	promptTok int32
	complTok  int32
	bytes     int32
	cli       int32 // client software (index into sim.cli); 0: none
	prompt    uint64
}

// clientID is a client software build as the engine sees it: the
// fingerprint of its TLS ClientHello and its User-Agent.
type clientID struct {
	tls uint64
	ua  string
}

type kind int

const (
	user kind = iota
	service
	agent
)

var kindNames = []string{"user", "service", "agent"}

// principal is the behaviour profile of one simulated principal.
type principal struct {
	id               string
	kind             kind
	start            int // day it appears
	tz               int // hours from UTC
	workFrom, workTo int // local office hours
	office, home     uint32
	models           []uint16
	tools            []uint16
	rate             float64 // services: requests per minute; agents: tasks per day; users: sessions per workday
	tplWords         [][]int // templates (services, agents)
	tokIn, tokOut    float64 // medians
	sigma            float64
	denyP, errP      float64
	trip             struct {
		from, to int
		net      uint32
		shift    int
	}
	lastPrompt []int
	// clients are the principal's client builds (indices into sim.cli):
	// users 1–3 (a browser, a command-line tool or SDK, a phone app; the
	// first is used most), services 1, agents 1–2.
	clients []int32
}

// attack is one injected attack.
type attack struct {
	kind  string
	p     int
	start int64
	end   int64
	sent  int
	done  bool
	until int
	feats []string
	owner int // benign requests of the principal during the attack
}

type sim struct {
	cfg        Config
	rng        *rand.Rand
	ps         []principal
	atk        []*attack
	epoch      time.Time
	buf        []byte
	wbuf       []int
	modelNames []string
	toolNames  []string
	// Client software, drawn from crng so that the rest of the traffic
	// is the same with and without it.
	crng   *rand.Rand
	cli    []clientID // 0: none; 1..clientBuilds: the catalogue; then attackers' own
	cliCDF []float64  // popularity of the catalogue's builds (Zipf)
}

const (
	vocabSize   = 3000
	modelsCount = 40
	toolsCount  = 60
	// clientBuilds is the catalogue of client software builds, popular
	// ones far more common (Zipf, exponent 1.2: the most common build is
	// about a quarter of all clients). Three consecutive builds (versions
	// of one program) share a TLS ClientHello and differ in User-Agent:
	// an update changes the User-Agent, one in three also the ClientHello.
	clientBuilds   = 300
	buildsPerStack = 3
	updateP        = 1.0 / 28  // per client and day: an update (browsers every ~4 weeks)
	newDeviceP     = 1.0 / 120 // per user and day: a new device or program replaces one
)

// Run replays cfg's traffic through a new engine and reports the results.
func Run(cfg Config) (*Result, error) {
	if cfg.Principals == 0 {
		cfg.Principals = 500
	}
	if cfg.Days == 0 {
		cfg.Days = 14
	}
	if cfg.AttacksPer == 0 && !cfg.NoAttacks {
		cfg.AttacksPer = 20
	}
	if cfg.Days < 6 && !cfg.NoAttacks {
		return nil, fmt.Errorf("behaviorsim: attacks need at least 6 days (history before them)")
	}
	switch cfg.Client {
	case "", ClientTLS, ClientUA, ClientOff:
	default:
		return nil, fmt.Errorf("behaviorsim: client %q: want %s, %s or %s", cfg.Client, ClientTLS, ClientUA, ClientOff)
	}
	switch cfg.StolenClient {
	case "", StolenNew, StolenUA, StolenReplay, StolenPopulation:
	default:
		return nil, fmt.Errorf("behaviorsim: stolen client %q: want %s, %s, %s or %s", cfg.StolenClient,
			StolenNew, StolenUA, StolenReplay, StolenPopulation)
	}
	switch cfg.StolenAt {
	case "", StolenNight, StolenDay:
	default:
		return nil, fmt.Errorf("behaviorsim: stolen at %q: want %s or %s", cfg.StolenAt, StolenNight, StolenDay)
	}
	switch cfg.StolenUsage {
	case "", StolenMimic, StolenOwn:
	default:
		return nil, fmt.Errorf("behaviorsim: stolen usage %q: want %s or %s", cfg.StolenUsage, StolenMimic, StolenOwn)
	}
	s := &sim{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5eed)),
		epoch: time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)} // a Monday
	for i := 0; i < modelsCount; i++ {
		s.modelNames = append(s.modelNames, fmt.Sprintf("model-%02d", i))
	}
	for i := 0; i < toolsCount; i++ {
		s.toolNames = append(s.toolNames, fmt.Sprintf("tool_%02d", i))
	}
	s.crng = rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0xc11e))
	s.makeClients()
	s.makePrincipals()
	if !cfg.NoAttacks {
		if err := s.planAttacks(); err != nil {
			return nil, err
		}
	}
	var clock int64
	opt := cfg.Engine
	opt.Now = func() time.Time { return time.Unix(0, clock) }
	opt.Record, opt.Responder = nil, nil
	eng, err := behavior.New(opt)
	if err != nil {
		return nil, err
	}
	res := &Result{Config: cfg, Attacks: map[string]*AttackResult{}, FalseAlarmsBy: map[string]int{}, Principals: len(s.ps),
		FalseAlarmsByFeatures: map[string]int{}}
	for _, a := range s.atk {
		ar := res.Attacks[a.kind]
		if ar == nil {
			ar = &AttackResult{Features: map[string]int{}}
			res.Attacks[a.kind] = ar
		}
		ar.Instances++
	}
	began := time.Now()
	faBy := map[int32]int{}
	var o behavior.Observation
	// A day's traffic may run past midnight (sessions in other time zones,
	// attacks); what does is replayed with the next day's, so that the
	// engine sees every principal's requests in time order.
	var pending []req
	for day := 0; day < cfg.Days; day++ {
		s.updateClients()
		reqs := append(pending, s.day(day)...)
		sort.Slice(reqs, func(i, j int) bool { return reqs[i].t < reqs[j].t })
		pending = nil
		if day < cfg.Days-1 {
			end := s.epoch.Add(time.Duration(day+1) * 24 * time.Hour).UnixNano()
			cut := sort.Search(len(reqs), func(i int) bool { return reqs[i].t >= end })
			pending = slices.Clone(reqs[cut:])
			reqs = reqs[:cut]
		}
		for i := range reqs {
			r := &reqs[i]
			clock = r.t
			p := &s.ps[r.p]
			o = behavior.Observation{At: time.Unix(0, r.t).UTC(), Kind: kindNames[p.kind], ID: p.id,
				Source: netip.AddrFrom4([4]byte{byte(r.net >> 16), byte(r.net >> 8), byte(r.net), 7}),
				Status: int(r.status), PromptTokens: int64(r.promptTok), CompletionTokens: int64(r.complTok),
				BytesOut: int64(r.bytes), Prompt: r.prompt}
			if r.model > 0 {
				o.Model = s.modelNames[r.model-1]
			}
			if r.tool > 0 {
				o.Tool = s.toolNames[r.tool-1]
			}
			if c := &s.cli[r.cli]; r.cli > 0 {
				switch cfg.Client {
				case ClientTLS, "":
					o.ClientHello, o.UserAgent = c.tls, c.ua
				case ClientUA:
					o.UserAgent = c.ua
				}
			}
			res.Requests++
			var a *attack
			if r.attack > 0 {
				a = s.atk[r.attack-1]
				a.sent++
			} else {
				res.BenignRequests++
				for _, x := range s.atk {
					if int(r.p) == x.p && x.sent > 0 && r.t <= x.end {
						x.owner++
					}
				}
			}
			an := eng.Observe(&o)
			if cfg.Trace != "" && p.id == cfg.Trace && cfg.TraceOut != nil {
				loc := time.Unix(0, r.t).UTC().Add(time.Duration(p.tz) * time.Hour)
				fmt.Fprintf(cfg.TraceOut, "day %2d %s local %s net %06x client %d status %d attack %d tokens %d/%d risk %.2f", day,
					time.Unix(0, r.t).UTC().Format("Mon 15:04:05"), loc.Format("15:04"), r.net, r.cli, r.status, r.attack,
					r.promptTok, r.complTok, eng.RiskOf(kindNames[p.kind], p.id))
				if an != nil {
					fmt.Fprintf(cfg.TraceOut, " ANOMALY %s", an.Reason)
				}
				fmt.Fprintln(cfg.TraceOut)
			}
			if an == nil {
				continue
			}
			// Which attack, if any, is running on this principal now?
			var cur *attack
			for _, x := range s.atk {
				if int(r.p) == x.p && r.t >= x.start && r.t <= x.end+int64(time.Hour) {
					cur = x
				}
			}
			switch {
			case cur != nil && cur.sent > 0:
				if !cur.done {
					cur.done, cur.until = true, cur.sent
					for _, f := range an.Features {
						cur.feats = append(cur.feats, f.Name)
					}
				}
			case cur != nil: // the attack's window, before its first request
			default:
				res.FalseAlarms++
				res.FalseAlarmsBy[kindNames[p.kind]]++
				faBy[r.p]++
				var fs []string
				for _, f := range an.Features {
					fs = append(fs, f.Name)
				}
				slices.Sort(fs)
				circ := kindNames[p.kind]
				if p.kind == user && day >= p.trip.from && day < p.trip.to {
					circ += fmt.Sprintf(" trip%+d", p.trip.shift)
				}
				res.FalseAlarmsByFeatures[circ+" "+strings.Join(fs, "+")]++
				if len(res.FalseAlarmSample) >= 12 {
					res.FalseAlarmSample = res.FalseAlarmSample[1:]
				}
				{
					where := "elsewhere"
					switch r.net {
					case p.office:
						where = "office"
					case p.home:
						where = "home"
					case p.trip.net:
						where = "trip"
					}
					res.FalseAlarmSample = append(res.FalseAlarmSample, fmt.Sprintf("%s day %d %s (local %s, %s): %s",
						p.id, day, time.Unix(0, r.t).UTC().Format("Mon 15:04"),
						time.Unix(0, r.t).UTC().Add(time.Duration(p.tz)*time.Hour).Format("15:04"), where, an.Reason))
				}
			}
		}
	}
	for _, a := range s.atk {
		ar := res.Attacks[a.kind]
		if !a.done || a.until > 50 {
			p := &s.ps[a.p]
			res.Misses = append(res.Misses, fmt.Sprintf("%s on %s (rate %.2f, tokOut %.0f, sigma %.2f, trip %d..%d %+dh, tz %+d, work %d-%d; owner's requests during the attack %d): until %d, features %v",
				a.kind, p.id, p.rate, p.tokOut, p.sigma, p.trip.from, p.trip.to, p.trip.shift, p.tz, p.workFrom, p.workTo, a.owner, a.until, a.feats))
		}
		if a.owner > 0 {
			ar.Concurrent++
		}
		if a.done {
			ar.Detected++
			ar.Until = append(ar.Until, a.until)
			for _, f := range a.feats {
				ar.Features[f]++
			}
		}
	}
	res.FalseAlarmPrincipals = len(faBy)
	res.Elapsed = time.Since(began)
	return res, nil
}

func (s *sim) unifInt(lo, hi int) int { return lo + s.rng.IntN(hi-lo+1) }

func (s *sim) lognormal(median, sigma float64) float64 {
	return median * math.Exp(sigma*s.rng.NormFloat64())
}

func (s *sim) newNet() uint32 { return uint32(s.rng.IntN(1 << 24)) }

func (s *sim) makePrincipals() {
	tzs := []int{-8, -5, -5, 0, 1, 1, 2, 5, 8, 9}
	for i := 0; i < s.cfg.Principals; i++ {
		p := principal{}
		switch x := s.rng.Float64(); {
		case x < 0.45:
			p.kind = user
		case x < 0.75:
			p.kind = service
		default:
			p.kind = agent
		}
		p.id = fmt.Sprintf("%s-%04d", kindNames[p.kind], i)
		if s.rng.Float64() < 0.1 {
			p.start = s.rng.IntN(max(s.cfg.Days-1, 1))
		}
		p.tz = tzs[s.rng.IntN(len(tzs))]
		p.workFrom, p.workTo = s.unifInt(7, 10), s.unifInt(16, 19)
		p.office, p.home = s.newNet(), s.newNet()
		nm := 1 + s.rng.IntN(3)
		for j := 0; j < nm; j++ {
			p.models = append(p.models, uint16(1+s.rng.IntN(modelsCount)))
		}
		p.tokIn, p.tokOut = s.lognormal(200, 0.6), s.lognormal(250, 0.5)
		p.sigma = 0.5 + 0.4*s.rng.Float64()
		p.denyP, p.errP = 0.003+0.02*s.rng.Float64(), 0.003+0.01*s.rng.Float64()
		switch p.kind {
		case user:
			p.rate = 1 + 4*s.rng.Float64()
			if s.rng.Float64() < 0.5 { // a trip somewhere during the run
				p.trip.from = s.rng.IntN(s.cfg.Days)
				p.trip.to = p.trip.from + s.unifInt(1, 4)
				p.trip.net = s.newNet()
				p.trip.shift = []int{0, 0, 1, -1, 6, -6, 9}[s.rng.IntN(7)]
			} else {
				p.trip.from, p.trip.to = -1, -1
			}
		case service:
			p.rate = math.Exp(math.Log(0.1) + s.rng.Float64()*math.Log(30)) // 0.1 to 3 per minute
			p.sigma = 0.2 + 0.2*s.rng.Float64()
			p.models = p.models[:1]
			for j := 0; j < 1+s.rng.IntN(3); j++ {
				p.tplWords = append(p.tplWords, s.template(s.unifInt(10, 40)))
			}
			p.denyP, p.errP = 0.001, 0.002
		case agent:
			p.rate = 2 + 20*s.rng.Float64() // tasks per day
			for j := 0; j < 2+s.rng.IntN(5); j++ {
				p.tools = append(p.tools, uint16(1+s.rng.IntN(toolsCount)))
			}
			p.tplWords = append(p.tplWords, s.template(s.unifInt(8, 20)))
		}
		s.ps = append(s.ps, p)
	}
	for i := range s.ps {
		s.giveClients(&s.ps[i])
	}
}

// makeClients builds the catalogue of client builds and gives every
// principal its clients.
func (s *sim) makeClients() {
	s.cli = make([]clientID, 1, clientBuilds+1)
	var sum float64
	for b := 1; b <= clientBuilds; b++ {
		stack := uint64((b-1)/buildsPerStack + 1)
		s.cli = append(s.cli, clientID{tls: splitmix(stack * 0x51ed27), ua: fmt.Sprintf("client/%d.%d", (b-1)/buildsPerStack, (b-1)%buildsPerStack)})
		sum += math.Pow(float64(b), -1.2)
		s.cliCDF = append(s.cliCDF, sum)
	}
	for i := range s.cliCDF {
		s.cliCDF[i] /= sum
	}
}

// popularBuild draws a catalogue build by popularity.
func (s *sim) popularBuild() int32 {
	return int32(sort.SearchFloat64s(s.cliCDF, s.crng.Float64())) + 1
}

// giveClients gives p its clients (after makePrincipals, from crng).
func (s *sim) giveClients(p *principal) {
	n := 1
	switch p.kind {
	case user:
		n = 1 + s.crng.IntN(3)
	case agent:
		n = 1 + s.crng.IntN(2)
	}
	for j := 0; j < n; j++ {
		p.clients = append(p.clients, s.popularBuild())
	}
}

// updateClients applies a day's software updates (the next build: a new
// User-Agent, every third one also a new ClientHello) and, for users, new
// devices (a build drawn by popularity replaces one of their clients).
func (s *sim) updateClients() {
	for i := range s.ps {
		p := &s.ps[i]
		for j, c := range p.clients {
			if s.crng.Float64() < updateP {
				p.clients[j] = c%clientBuilds + 1
			}
		}
		if p.kind == user && s.crng.Float64() < newDeviceP {
			p.clients[s.crng.IntN(len(p.clients))] = s.popularBuild()
		}
	}
}

// sessionClient is the client of a user's session or an agent's task: the
// first (main) one 70% of the time.
func (s *sim) sessionClient(p *principal) int32 {
	if len(p.clients) == 1 || s.crng.Float64() < 0.7 {
		return p.clients[0]
	}
	return p.clients[1+s.crng.IntN(len(p.clients)-1)]
}

// stolenClient is the client a stolen credential of p is used from.
func (s *sim) stolenClient(p *principal) int32 {
	victim := s.cli[p.clients[0]]
	own := clientID{tls: splitmix(uint64(len(s.cli)) ^ 0xa77ac4e4), ua: fmt.Sprintf("attacker/%d", len(s.cli))}
	switch s.cfg.StolenClient {
	case StolenReplay:
		return p.clients[0]
	case StolenPopulation:
		return s.popularBuild()
	case StolenUA:
		own.ua = victim.ua
	}
	s.cli = append(s.cli, own)
	return int32(len(s.cli) - 1)
}

func splitmix(x uint64) uint64 {
	x += 0x9E3779B97F4A7C15
	x = (x ^ x>>30) * 0xBF58476D1CE4E5B9
	x = (x ^ x>>27) * 0x94D049BB133111EB
	return x ^ x>>31
}

func (s *sim) template(n int) []int {
	w := make([]int, n)
	for i := range w {
		w[i] = s.word()
	}
	return w
}

// word draws a word from a Zipf-like vocabulary.
func (s *sim) word() int {
	return int(math.Floor(math.Pow(float64(vocabSize), s.rng.Float64()))) - 1
}

// sketch renders words as text and sketches it.
func (s *sim) sketch(words []int) uint64 {
	b := s.buf[:0]
	for i, w := range words {
		if i > 0 {
			b = append(b, ' ')
		}
		b = fmt.Appendf(b, "w%x", w*2654435761%1000003)
	}
	s.buf = b
	return behavior.Sketch(b)
}

func (s *sim) diversePrompt(p *principal) uint64 {
	n := s.unifInt(4, 60)
	if p.lastPrompt != nil && s.rng.Float64() < 0.1 { // edit and resend
		w := slices.Clone(p.lastPrompt)
		w[s.rng.IntN(len(w))] = s.word()
		p.lastPrompt = w
		return s.sketch(w)
	}
	w := s.wbuf[:0]
	for i := 0; i < n; i++ {
		w = append(w, s.word())
	}
	s.wbuf = w
	p.lastPrompt = slices.Clone(w)
	return s.sketch(w)
}

func (s *sim) templatedPrompt(tpl []int, slots int) uint64 {
	w := append(s.wbuf[:0], tpl...)
	for i := 0; i < slots; i++ {
		w[s.rng.IntN(len(w))] = s.word()
	}
	s.wbuf = w
	return s.sketch(w)
}

// planAttacks picks distinct principals with at least four days of history
// before a start in day 4 or later.
func (s *sim) planAttacks() error {
	kinds := s.cfg.Only
	if len(kinds) == 0 {
		kinds = Attacks
	}
	used := map[int]bool{}
	for _, k := range kinds {
		for i := 0; i < s.cfg.AttacksPer; i++ {
			var p int
			for tries := 0; ; tries++ {
				if tries > 10000 {
					return fmt.Errorf("behaviorsim: not enough principals for %d attacks of each kind", s.cfg.AttacksPer)
				}
				p = s.rng.IntN(len(s.ps))
				pr := &s.ps[p]
				if used[p] || pr.start > 0 {
					continue
				}
				if k == Stolen || k == Exfiltration {
					if pr.kind != user {
						continue
					}
				}
				if k == Extraction && pr.kind == service {
					continue // services send templated prompts all day; see docs/behavior.md
				}
				break
			}
			used[p] = true
			day := s.unifInt(4, s.cfg.Days-2)
			pr := &s.ps[p]
			// The attack starts at a time the principal could plausibly be
			// active, except the stolen credential: at the owner's night.
			hour := s.unifInt(pr.workFrom, pr.workTo-1) - pr.tz
			if k == Stolen {
				if h := s.unifInt(1, 4) - pr.tz; s.cfg.StolenAt != StolenDay {
					hour = h
				}
			}
			if pr.kind == service {
				hour = s.rng.IntN(24)
			}
			start := s.epoch.Add(time.Duration(day)*24*time.Hour + time.Duration(hour)*time.Hour +
				time.Duration(s.rng.IntN(3600))*time.Second).UnixNano()
			s.atk = append(s.atk, &attack{kind: k, p: p, start: start})
		}
	}
	return nil
}

// day generates the requests of one day, sorted by time.
func (s *sim) day(d int) []req {
	var out []req
	dayStart := s.epoch.Add(time.Duration(d) * 24 * time.Hour)
	weekend := dayStart.Weekday() == time.Saturday || dayStart.Weekday() == time.Sunday
	for i := range s.ps {
		p := &s.ps[i]
		if d < p.start {
			continue
		}
		switch p.kind {
		case user:
			out = s.userDay(out, int32(i), p, d, dayStart, weekend)
		case service:
			out = s.serviceDay(out, int32(i), p, d, dayStart)
		case agent:
			out = s.agentDay(out, int32(i), p, d, dayStart, weekend)
		}
	}
	for ai, a := range s.atk {
		out = s.attackDay(out, ai, a, dayStart)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].t < out[j].t })
	return out
}

// benign fills a benign request's outcome and sizes.
func (s *sim) benign(p *principal, r *req) {
	r.status = 200
	switch x := s.rng.Float64(); {
	case x < p.denyP:
		r.status = 403
	case x < p.denyP+p.errP:
		r.status = []int16{400, 500, 502, 429}[s.rng.IntN(4)]
		if r.status == 429 {
			r.status = 503
		}
	}
	if r.model == 0 && len(p.models) > 0 {
		r.model = p.models[s.rng.IntN(len(p.models))]
		if p.kind == user && s.rng.Float64() < 0.003 {
			r.model = uint16(1 + s.rng.IntN(modelsCount)) // trying another model
		}
	}
	if r.status == 200 {
		r.promptTok = int32(max(1, s.lognormal(p.tokIn, p.sigma)))
		r.complTok = int32(max(1, s.lognormal(p.tokOut, p.sigma)))
		r.bytes = int32(float64(r.complTok)*4.2 + 250 + 100*s.rng.Float64())
	} else {
		r.bytes = int32(180 + s.rng.IntN(80))
	}
}

func (s *sim) userDay(out []req, pi int32, p *principal, d int, dayStart time.Time, weekend bool) []req {
	traveling := d >= p.trip.from && d < p.trip.to
	shift := 0
	if traveling {
		shift = p.trip.shift
	}
	sessions := 0
	if weekend {
		if s.rng.Float64() < 0.2 {
			sessions = 1
		}
	} else {
		sessions = poisson(s.rng, p.rate)
	}
	for k := 0; k < sessions; k++ {
		local := float64(p.workFrom) + s.rng.Float64()*float64(p.workTo-p.workFrom)
		net := p.office
		if weekend {
			local, net = 10+8*s.rng.Float64(), p.home
		}
		if !weekend && s.rng.Float64() < 0.08 { // evening at home
			local, net = 19+4*s.rng.Float64(), p.home
		}
		if s.rng.Float64() < 0.04 { // mobile or a café
			net = s.newNet()
		}
		if traveling {
			net = p.trip.net
		}
		cli := s.sessionClient(p) // travellers keep their devices
		t := dayStart.Add(time.Duration((local - float64(p.tz) - float64(shift)) * float64(time.Hour))).UnixNano()
		n := 1 + int(s.rng.ExpFloat64()*6)
		burst := s.rng.Float64() < 0.03 // a batch run from a notebook
		if burst {
			n = s.unifInt(20, 60)
		}
		for j := 0; j < n; j++ {
			r := req{t: t, p: pi, net: net, cli: cli}
			s.benign(p, &r)
			r.prompt = s.diversePrompt(p)
			out = append(out, r)
			gap := 10 + s.rng.ExpFloat64()*60
			if burst {
				gap = 1 + 4*s.rng.Float64()
			}
			t += int64(gap * float64(time.Second))
		}
	}
	return out
}

func (s *sim) serviceDay(out []req, pi int32, p *principal, d int, dayStart time.Time) []req {
	outage := s.rng.Float64() < 0.1 // an upstream outage: errors for a while
	outFrom := s.rng.Float64() * 23
	t := float64(dayStart.UnixNano())
	end := t + float64(24*time.Hour)
	for {
		h := (t - float64(dayStart.UnixNano())) / float64(time.Hour)
		lambda := p.rate * (1 + 0.6*math.Sin(2*math.Pi*(h+float64(p.tz))/24)) / 60 // per second
		t += s.rng.ExpFloat64() / lambda * float64(time.Second)
		if t >= end {
			return out
		}
		r := req{t: int64(t), p: pi, net: p.office, cli: p.clients[0]}
		s.benign(p, &r)
		if outage && h >= outFrom && h < outFrom+0.5 && s.rng.Float64() < 0.7 {
			r.status, r.promptTok, r.complTok, r.bytes = 502, 0, 0, 200
		}
		r.prompt = s.templatedPrompt(p.tplWords[s.rng.IntN(len(p.tplWords))], 3)
		out = append(out, r)
	}
}

func (s *sim) agentDay(out []req, pi int32, p *principal, d int, dayStart time.Time, weekend bool) []req {
	tasks := poisson(s.rng, p.rate)
	if weekend {
		tasks = poisson(s.rng, p.rate/4)
	}
	for k := 0; k < tasks; k++ {
		local := 6 + 16*s.rng.Float64()
		t := dayStart.Add(time.Duration((local - float64(p.tz)) * float64(time.Hour))).UnixNano()
		n := s.unifInt(3, 40)
		cli := s.sessionClient(p)
		for j := 0; j < n; j++ {
			r := req{t: t, p: pi, net: p.office, cli: cli}
			if j%2 == 1 && len(p.tools) > 0 {
				r.tool = p.tools[s.rng.IntN(len(p.tools))]
			}
			s.benign(p, &r)
			if s.rng.Float64() < 0.5 {
				r.prompt = s.templatedPrompt(p.tplWords[0], 6)
			} else {
				r.prompt = s.diversePrompt(p)
			}
			out = append(out, r)
			t += int64((0.5 + s.rng.ExpFloat64()*5) * float64(time.Second))
		}
	}
	return out
}

// attackerProfile is the usage of a stolen credential's attacker with
// habits of its own: a user drawn like the simulation's users (its models,
// prompt and output sizes, denial and error rates), with no prompt history.
func (s *sim) attackerProfile() *principal {
	a := &principal{kind: user}
	for j := 0; j < 1+s.rng.IntN(3); j++ {
		a.models = append(a.models, uint16(1+s.rng.IntN(modelsCount)))
	}
	a.tokIn, a.tokOut = s.lognormal(200, 0.6), s.lognormal(250, 0.5)
	a.sigma = 0.5 + 0.4*s.rng.Float64()
	a.denyP, a.errP = 0.003+0.02*s.rng.Float64(), 0.003+0.01*s.rng.Float64()
	return a
}

// attackDay adds the requests of attack ai that fall on this day (attacks
// are generated whole on their first day).
func (s *sim) attackDay(out []req, ai int, a *attack, dayStart time.Time) []req {
	if a.start < dayStart.UnixNano() || a.start >= dayStart.Add(24*time.Hour).UnixNano() {
		return out
	}
	p := &s.ps[a.p]
	t := a.start
	// The attacks other than the stolen credential come from the
	// principal's own (main) client: an insider, a compromised agent.
	cli := p.clients[0]
	if a.kind == Stolen {
		cli = s.stolenClient(p)
	}
	add := func(r req, gap float64) {
		r.t, r.p, r.attack, r.cli = t, int32(a.p), int16(ai+1), cli
		out = append(out, r)
		a.end = t
		t += int64(gap * float64(time.Second))
	}
	homeNet := p.office
	switch a.kind {
	case Extraction:
		tpl := s.template(s.unifInt(15, 30))
		for i := 0; i < 300; i++ {
			r := req{net: homeNet}
			s.benign(p, &r)
			r.status = 200
			r.promptTok = int32(s.lognormal(float64(len(tpl))*1.5, 0.1))
			r.complTok = int32(s.lognormal(40, 0.5))
			r.bytes = int32(float64(r.complTok)*4.2 + 300)
			r.prompt = s.templatedPrompt(tpl, s.unifInt(1, 3))
			if len(p.tools) > 0 && i%2 == 1 {
				r.tool = p.tools[0]
			}
			add(r, 2+8*s.rng.Float64())
		}
	case Exfiltration:
		for i := 0; i < 100; i++ {
			r := req{net: homeNet}
			s.benign(p, &r)
			r.status = 200
			r.promptTok = int32(s.lognormal(p.tokIn, p.sigma))
			r.complTok = int32(s.lognormal(6000, 0.3))
			r.bytes = int32(float64(r.complTok)*4.2 + 300)
			r.prompt = s.diversePrompt(p)
			add(r, 20+40*s.rng.Float64())
		}
	case Stolen:
		net := s.newNet()
		up := p // whose habits the requests follow
		if s.cfg.StolenUsage == StolenOwn {
			// The attacker's own habits, from its own random stream.
			saved := s.rng
			s.rng = rand.New(rand.NewPCG(s.cfg.Seed^uint64(ai+1)*0x9E3779B97F4A7C15, 0xa77ac4))
			defer func() { s.rng = saved }()
			up = s.attackerProfile()
		}
		for i := 0; i < 100; i++ {
			r := req{net: net}
			s.benign(up, &r)
			r.prompt = s.diversePrompt(up)
			add(r, 10+50*s.rng.Float64())
		}
	case DenialSpike:
		net := homeNet
		for i := 0; i < 100; i++ {
			r := req{net: net}
			s.benign(p, &r)
			if s.rng.Float64() < 0.8 {
				r.status, r.promptTok, r.complTok, r.bytes = 403, 0, 0, 220
			}
			r.prompt = s.diversePrompt(p)
			add(r, 1+4*s.rng.Float64())
		}
	case SlowProbe:
		for i := 0; i < 60; i++ {
			r := req{net: homeNet}
			s.benign(p, &r)
			if s.rng.Float64() < 0.5 {
				r.model = uint16(1 + s.rng.IntN(modelsCount))
			} else {
				r.tool = uint16(1 + s.rng.IntN(toolsCount))
			}
			switch x := s.rng.Float64(); {
			case x < 0.6:
				r.status, r.promptTok, r.complTok, r.bytes = 403, 0, 0, 220
			case x < 0.85:
				r.status, r.promptTok, r.complTok, r.bytes = 404, 0, 0, 200
			}
			r.prompt = s.diversePrompt(p)
			add(r, 120+480*s.rng.Float64())
		}
	}
	return out
}

func poisson(rng *rand.Rand, mean float64) int {
	l, k, p := math.Exp(-mean), 0, 1.0
	for {
		p *= rng.Float64()
		if p < l {
			return k
		}
		k++
	}
}

// Report formats results of several seeds as a Markdown table.
func Report(results []*Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "| attack | instances | detected | rate | within 50 requests | median requests to detect | max | owner active during | driving features |\n")
	fmt.Fprintf(&b, "|---|---|---|---|---|---|---|---|---|\n")
	for _, k := range Attacks {
		agg := &AttackResult{Features: map[string]int{}}
		for _, r := range results {
			if a := r.Attacks[k]; a != nil {
				agg.Instances += a.Instances
				agg.Detected += a.Detected
				agg.Until = append(agg.Until, a.Until...)
				agg.Concurrent += a.Concurrent
				for f, n := range a.Features {
					agg.Features[f] += n
				}
			}
		}
		if agg.Instances == 0 {
			continue
		}
		type fc struct {
			f string
			n int
		}
		var fs []fc
		for f, n := range agg.Features {
			fs = append(fs, fc{f, n})
		}
		sort.Slice(fs, func(i, j int) bool { return fs[i].n > fs[j].n || fs[i].n == fs[j].n && fs[i].f < fs[j].f })
		var names []string
		for i, x := range fs {
			if i == 3 {
				break
			}
			names = append(names, x.f)
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %.1f%% | %.1f%% | %d | %d | %d | %s |\n", k, agg.Instances, agg.Detected,
			100*agg.Rate(), 100*float64(agg.Within(50))/float64(agg.Instances), agg.Median(), agg.Max(), agg.Concurrent, strings.Join(names, ", "))
	}
	return b.String()
}
