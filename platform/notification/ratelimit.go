package notification

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// gcra reserves the next send slot of a rate shared by every process (the
// generic cell rate algorithm with a burst of one): KEYS[1] holds the
// theoretical arrival time of the next slot in microseconds of the Redis
// clock, ARGV[1] the interval between sends in microseconds. It returns how
// many microseconds the caller waits before sending. The Redis clock keeps
// processes on different hosts in step.
var gcra = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local nextTat = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', nextTat), 'PX', math.ceil((nextTat - now) / 1000) + 1000)
return tat - now
`)

// Limiter holds sends to a rate across every process sharing its Redis key.
// A caller reserves a slot and sleeps until it: sends are spaced evenly, so
// no one-second window holds more than the rate, and waiting costs no attempt.
type Limiter struct {
	rdb      redis.Scripter
	key      string
	interval time.Duration
}

// NewLimiter returns a limiter of perSecond sends on key.
func NewLimiter(rdb redis.Scripter, key string, perSecond float64) (*Limiter, error) {
	if perSecond <= 0 {
		return nil, fmt.Errorf("rate-limit: %v is not a positive rate", perSecond)
	}
	return &Limiter{rdb: rdb, key: key, interval: time.Duration(float64(time.Second) / perSecond)}, nil
}

// Wait blocks until the caller may send, and returns how long it waited.
func (l *Limiter) Wait(ctx context.Context) (time.Duration, error) {
	us, err := gcra.Run(ctx, l.rdb, []string{l.key}, l.interval.Microseconds()).Int64()
	if err != nil {
		return 0, fmt.Errorf("notification: rate limiter: %w", err)
	}
	d := time.Duration(us) * time.Microsecond
	if d <= 0 {
		return 0, nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return d, ctx.Err()
	case <-t.C:
		return d, nil
	}
}
