package notification

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/redis/go-redis/v9"
)

// reserve hands out evenly spaced send slots of a rate shared by every
// process (the generic cell rate algorithm): KEYS[1] holds the theoretical
// arrival time of the next slot in microseconds of the Redis clock, ARGV[1]
// the interval between slots in microseconds, ARGV[2] how far ahead of now
// slots may be handed out without waiting (the burst). It returns how many
// microseconds the caller waits for its slot. The Redis clock keeps
// processes on different hosts in step.
var reserve = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local nextTat = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', nextTat), 'PX', math.ceil((nextTat - now) / 1000) + 1000)
return math.max(0, tat - now - tolerance)
`)

// commit admits a send now if fewer than ARGV[2] sends were admitted in the
// last ARGV[1] microseconds (a sliding log in the sorted set KEYS[1]), and
// records it as ARGV[3]; otherwise it returns the microseconds until the
// oldest admitted send leaves the window.
var commit = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now - window))
if redis.call('ZCARD', KEYS[1]) >= limit then
	local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
	return math.max(1, tonumber(oldest[2]) + window - now + 1)
end
redis.call('ZADD', KEYS[1], string.format('%.0f', now), ARGV[3])
redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000) + 1000)
return 0
`)

// DefaultRateGuard widens the limiter's one-second window: the time between
// the limiter admitting a send and the provider receiving it (the Redis
// reply, the process being scheduled on a busy machine) may shift sends by up
// to this much without any one-second window at the provider holding more
// than the limit. It costs 1 - 1/1.05 of the rate (50/s admits at most 47.6/s).
const DefaultRateGuard = 50 * time.Millisecond

// Burst is how many sends may go at once when the limiter has been idle
// (one notification's channels, with room to spare): it keeps the first
// channel of a notification from queueing behind another's below the cap.
// The sliding log still holds every window to the limit.
const Burst = 5

// Limiter holds sends to a rate across every process sharing its Redis keys.
// A caller first reserves an evenly spaced slot and sleeps until it (so
// waiters do not stampede Redis), then is admitted only if the sliding
// one-second (plus a guard) log of admitted sends has room at the moment
// it really sends: a sender that woke up late cannot crowd a window. Waiting
// costs a task none of its attempts.
type Limiter struct {
	rdb      redis.Scripter
	tatKey   string
	logKey   string
	limit    int
	window   time.Duration
	interval time.Duration
}

// NewLimiter returns a limiter of perSecond sends on the Redis keys key:tat
// and key:log, with a one-second window widened by guard (DefaultRateGuard when 0).
func NewLimiter(rdb redis.Scripter, key string, perSecond float64, guard time.Duration) (*Limiter, error) {
	if perSecond < 1 {
		return nil, fmt.Errorf("rate-limit: %v is not a rate of at least 1/s", perSecond)
	}
	if guard < 0 || guard > 500*time.Millisecond {
		return nil, fmt.Errorf("rate-guard: %s is not between 0 and 500ms", guard)
	}
	if guard == 0 {
		guard = DefaultRateGuard
	}
	window := time.Second + guard
	return &Limiter{
		rdb: rdb, tatKey: key + ":tat", logKey: key + ":log",
		limit:    int(perSecond),
		window:   window,
		interval: time.Duration(float64(window) / float64(int(perSecond))),
	}, nil
}

// Wait blocks until the caller may send, and returns how long it waited.
func (l *Limiter) Wait(ctx context.Context) (time.Duration, error) {
	us, err := reserve.Run(ctx, l.rdb, []string{l.tatKey}, l.interval.Microseconds(), (Burst-1)*l.interval.Microseconds()).Int64()
	if err != nil {
		return 0, fmt.Errorf("notification: rate limiter: %w", err)
	}
	waited := time.Duration(us) * time.Microsecond
	if err := sleep(ctx, waited); err != nil {
		return waited, err
	}
	member := fmt.Sprintf("%d-%x", time.Now().UnixNano(), rand.Uint64())
	for {
		us, err := commit.Run(ctx, l.rdb, []string{l.logKey}, l.window.Microseconds(), l.limit, member).Int64()
		if err != nil {
			return waited, fmt.Errorf("notification: rate limiter: %w", err)
		}
		if us == 0 {
			return waited, nil
		}
		d := time.Duration(us) * time.Microsecond
		waited += d
		if err := sleep(ctx, d); err != nil {
			return waited, err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
