package limit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// takeScript is Take in one atomic step. KEYS are the check keys; ARGV[1]
// is now in microseconds (an exact integer in Lua's doubles until the
// year 2255), then four arguments per check: kind, a, b, cost. Rate: a is
// the emission interval in µs, b the burst. Window: a is the limit, b the
// window's end in µs. It first evaluates every check, then writes only if
// all pass, so a refused exchange charges nothing. It returns
// {allowed 0|1, first failed index (1-based, 0 if none), retry after µs}.
var takeScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local newv, ttl = {}, {}
local failed, retry = 0, 0
for i = 1, #KEYS do
  local o = 1 + (i - 1) * 4
  local kind, a, b, cost = tonumber(ARGV[o + 1]), tonumber(ARGV[o + 2]), tonumber(ARGV[o + 3]), tonumber(ARGV[o + 4])
  local cur = tonumber(redis.call('GET', KEYS[i]) or '0') or 0
  local r = 0
  if kind == 1 then
    local tat = cur
    if tat < now then tat = now end
    local nt = tat + a * cost
    local allowAt = nt - a * b
    if now < allowAt then r = allowAt - now end
    newv[i], ttl[i] = nt, nt - now
  else
    if cur >= a or cur + cost > a then r = math.max(1, b - now) end
    newv[i], ttl[i] = cur + cost, b - now
  end
  if r > 0 then
    if failed == 0 then failed = i end
    if r > retry then retry = r end
  end
end
if failed > 0 then return {0, failed, retry} end
for i = 1, #KEYS do
  local cost = tonumber(ARGV[1 + (i - 1) * 4 + 4])
  if cost > 0 and ttl[i] > 0 then
    redis.call('SET', KEYS[i], string.format('%d', newv[i]), 'PX', math.ceil(ttl[i] / 1000))
  end
end
return {1, 0, 0}
`)

// addScript is Add in one atomic step: ARGV[1] is now in µs, then two
// arguments per key: delta and the window's end in µs.
var addScript = redis.NewScript(`
local now = tonumber(ARGV[1])
for i = 1, #KEYS do
  local delta, e = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  if e > now and delta ~= 0 then
    local v = redis.call('INCRBY', KEYS[i], delta)
    if v <= 0 then
      redis.call('DEL', KEYS[i])
    else
      redis.call('PEXPIRE', KEYS[i], math.ceil((e - now) / 1000))
    end
  end
end
return 0
`)

// RedisOptions configure the Redis backend.
type RedisOptions struct {
	// Addrs are host:port addresses: one for a single server, several
	// for a Redis Cluster.
	Addrs    []string
	Username string
	Password string
	DB       int
	// KeyPrefix is put before every key; default "warden:limit:".
	KeyPrefix string
	// Timeout bounds dialing and each command; default 250ms. A slow or
	// dead Redis then costs at most this per exchange.
	Timeout time.Duration
	// PoolSize is the connections per node; default go-redis's (10 per CPU).
	PoolSize int
}

// DefaultRedisKeyPrefix is RedisOptions.KeyPrefix's default.
const DefaultRedisKeyPrefix = "warden:limit:"

// Redis is the Backend shared by several warden replicas. Every Take and
// Add is one Lua script, atomic on the server; keys carry a TTL (a
// window's end, or when a rate limit is back to full), and all keys of one
// tag share a cluster hash tag. Clocks: replicas pass their own time, so
// they should be synchronized (NTP); a skew of d lets a replica admit at
// most d/interval more events.
type Redis struct {
	c      redis.UniversalClient
	prefix string
}

// NewRedis returns a Redis backend. It does not connect: the first
// command does (use Ping to check at start).
func NewRedis(o RedisOptions) (*Redis, error) {
	if len(o.Addrs) == 0 {
		return nil, errors.New("limit: redis: no address")
	}
	if o.KeyPrefix == "" {
		o.KeyPrefix = DefaultRedisKeyPrefix
	}
	if o.Timeout <= 0 {
		o.Timeout = 250 * time.Millisecond
	}
	quietRedis.Do(func() { redis.SetLogger(redisLogger{}) })
	c := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:        o.Addrs,
		Username:     o.Username,
		Password:     o.Password,
		DB:           o.DB,
		DialTimeout:  o.Timeout,
		ReadTimeout:  o.Timeout,
		WriteTimeout: o.Timeout,
		PoolTimeout:  o.Timeout,
		PoolSize:     o.PoolSize,
		MaxRetries:   -1, // a retry doubles the wait on a dead server; the fail mode decides
		// One dial attempt per command: go-redis's default is 5, 100ms apart.
		DialerRetries:      1,
		DialerRetryTimeout: time.Millisecond,
		// Identity (CLIENT SETINFO) is off: older servers and proxies reject it.
		DisableIdentity: true,
	})
	return &Redis{c: c, prefix: o.KeyPrefix}, nil
}

// quietRedis sends go-redis's own log lines (dial failures, on every
// command while Redis is down) to slog at debug level, once per process:
// the stage logs backend failures itself, rate limited.
var quietRedis sync.Once

type redisLogger struct{}

func (redisLogger) Printf(ctx context.Context, format string, v ...any) {
	slog.DebugContext(ctx, "limit: go-redis: "+fmt.Sprintf(format, v...))
}

func micros(t time.Time) int64 { return t.UnixMicro() }

// Take implements Backend.
func (r *Redis) Take(ctx context.Context, _ string, now time.Time, checks []Check) (Result, error) {
	if !validChecks(checks) {
		return Result{}, errBadCheck
	}
	keys := make([]string, len(checks))
	args := make([]any, 0, 1+4*len(checks))
	args = append(args, micros(now))
	for i := range checks {
		c := &checks[i]
		keys[i] = r.prefix + c.Key
		switch c.Kind {
		case KindRate:
			iv := max(1, c.Interval.Microseconds())
			args = append(args, 1, iv, c.Burst, c.Cost)
		case KindWindow:
			args = append(args, 2, c.Limit, micros(c.End), c.Cost)
		}
	}
	v, err := takeScript.Run(ctx, r.c, keys, args...).Int64Slice()
	if err != nil {
		return Result{}, fmt.Errorf("limit: redis: %w", err)
	}
	if len(v) != 3 || v[1] < 0 || v[1] > int64(len(checks)) {
		return Result{}, fmt.Errorf("limit: redis: unexpected reply %v", v)
	}
	if v[0] == 1 {
		return Result{Allowed: true, Failed: -1}, nil
	}
	return Result{Failed: int(v[1]) - 1, RetryAfter: time.Duration(max(1, v[2])) * time.Microsecond}, nil
}

// Add implements Backend.
func (r *Redis) Add(ctx context.Context, _ string, now time.Time, adds []Adjustment) error {
	if len(adds) == 0 {
		return nil
	}
	if len(adds) > maxChecks {
		return errBadCheck
	}
	keys := make([]string, 0, len(adds))
	args := make([]any, 0, 1+2*len(adds))
	args = append(args, micros(now))
	for _, a := range adds {
		if a.Key == "" {
			return errBadCheck
		}
		keys = append(keys, r.prefix+a.Key)
		args = append(args, a.Delta, micros(a.End))
	}
	if err := addScript.Run(ctx, r.c, keys, args...).Err(); err != nil {
		return fmt.Errorf("limit: redis: %w", err)
	}
	return nil
}

// Ping implements Backend.
func (r *Redis) Ping(ctx context.Context) error {
	if err := r.c.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("limit: redis: %w", err)
	}
	return nil
}

// Close implements Backend.
func (r *Redis) Close() error { return r.c.Close() }

// itoa is strconv.FormatInt for the tests and key builders.
func itoa(n int64) string { return strconv.FormatInt(n, 10) }

var _ Backend = (*Redis)(nil)
