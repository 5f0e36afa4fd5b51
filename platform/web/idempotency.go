package web

import "net/http"

// HeaderIdempotencyKey makes a mutating request safe to repeat: the service
// answers every repeat of a key with its first answer.
const HeaderIdempotencyKey = "Idempotency-Key"

// HeaderReplayed, set to "true", marks an answer sent again for a repeated key.
const HeaderReplayed = "Idempotent-Replayed"

// IdempotencyKey returns the request's Idempotency-Key: "" when it has none,
// a 400 naming the header when it is longer than max bytes or is not text.
func IdempotencyKey(r *http.Request, max int) (string, error) {
	key := r.Header.Get(HeaderIdempotencyKey)
	if len(key) > max {
		return "", Errorf(http.StatusBadRequest, HeaderIdempotencyKey, "at most %d characters", max)
	}
	if err := CheckText(HeaderIdempotencyKey, key, 0); err != nil {
		return "", err
	}
	return key, nil
}
