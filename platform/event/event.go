// Package event defines the one envelope every Stampede record on Kafka
// carries, the payload types of the domain events, and a decoder that
// validates both and returns a typed error, so consumers can route a bad
// record to a dead-letter topic instead of crashing or skipping silently.
//
// Money is always integer minor units (cents) with an ISO 4217 currency;
// never floats. This package must never do I/O.
package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Envelope wraps every event. ID is unique per event (not per delivery): a
// relay that publishes twice publishes the same ID, and consumers dedupe on it.
type Envelope struct {
	ID            string          `json:"id"`
	Type          string          `json:"type"`
	Version       int             `json:"version"`
	OccurredAt    time.Time       `json:"occurredAt"`
	CorrelationID string          `json:"correlationId"`
	Source        string          `json:"source"`
	Data          json.RawMessage `json:"data"`
}

// Kafka header names every published record carries.
const (
	HeaderCorrelationID = "correlation-id"
	HeaderSource        = "source"
	HeaderEventType     = "event-type"
	HeaderEventVersion  = "event-version"
)

// Payload is implemented by every event payload type.
type Payload interface {
	EventType() string
	Validate() error
}

// New builds an envelope around p with a fresh id, at the given time.
func New(p Payload, source, correlationID string, at time.Time) (Envelope, error) {
	if err := p.Validate(); err != nil {
		return Envelope{}, fmt.Errorf("event: new %s: %w", p.EventType(), err)
	}
	data, err := json.Marshal(p)
	if err != nil {
		return Envelope{}, fmt.Errorf("event: encode %s: %w", p.EventType(), err)
	}
	return Envelope{
		ID:            uuid.NewString(),
		Type:          p.EventType(),
		Version:       1,
		OccurredAt:    at.UTC(),
		CorrelationID: correlationID,
		Source:        source,
		Data:          data,
	}, nil
}

// DecodeError says why a record is not a valid event. Consumers send such
// records to the dead-letter topic with Reason in a header.
type DecodeError struct {
	Type   string // the event type, when it could be read
	Field  string
	Reason string
}

func (e *DecodeError) Error() string {
	switch {
	case e.Field != "" && e.Type != "":
		return fmt.Sprintf("event: %s: %s: %s", e.Type, e.Field, e.Reason)
	case e.Field != "":
		return fmt.Sprintf("event: %s: %s", e.Field, e.Reason)
	default:
		return "event: " + e.Reason
	}
}

// FieldEnvelope is the field a DecodeError names when the record is not a
// JSON envelope at all.
const FieldEnvelope = "envelope"

// maxName bounds an envelope's type and source (they become Kafka headers,
// metric labels and log fields).
const maxName = 128

// ErrUnknownType is wrapped by the DecodeError of an event type this build does not know.
var ErrUnknownType = errors.New("event: unknown type")

// Decode parses and validates an envelope (not its payload).
func Decode(b []byte) (Envelope, error) {
	var env Envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return Envelope{}, &DecodeError{Field: FieldEnvelope, Reason: "not a JSON envelope: " + err.Error()}
	}
	switch {
	case env.ID == "":
		return env, &DecodeError{Type: env.Type, Field: "id", Reason: "missing"}
	case uuid.Validate(env.ID) != nil:
		return env, &DecodeError{Type: env.Type, Field: "id", Reason: "not a UUID"}
	case env.Type == "":
		return env, &DecodeError{Field: "type", Reason: "missing"}
	case env.Version < 1:
		return env, &DecodeError{Type: env.Type, Field: "version", Reason: "missing or below 1"}
	case env.OccurredAt.IsZero():
		return env, &DecodeError{Type: env.Type, Field: "occurredAt", Reason: "missing"}
	case !ValidText(env.Type, maxName):
		return env, &DecodeError{Field: "type", Reason: textRule(maxName)}
	case env.Source == "":
		return env, &DecodeError{Type: env.Type, Field: "source", Reason: "missing"}
	case !ValidText(env.Source, maxName):
		return env, &DecodeError{Type: env.Type, Field: "source", Reason: textRule(maxName)}
	case env.CorrelationID != "" && !ValidCorrelationID(env.CorrelationID):
		return env, &DecodeError{Type: env.Type, Field: "correlationId", Reason: "want 1-128 letters, digits and . _ : / @ + = -"}
	case len(env.Data) == 0 || string(env.Data) == "null":
		return env, &DecodeError{Type: env.Type, Field: "data", Reason: "missing"}
	}
	return env, nil
}

// DecodeData decodes and validates the payload of env into T, checking that
// env carries T's event type.
func DecodeData[T any, PT interface {
	*T
	Payload
}](env Envelope) (T, error) {
	var v T
	if want := PT(&v).EventType(); env.Type != want {
		return v, &DecodeError{Type: env.Type, Field: "type", Reason: fmt.Sprintf("want %s", want)}
	}
	dec := json.NewDecoder(bytes.NewReader(env.Data))
	if err := dec.Decode(&v); err != nil {
		return v, &DecodeError{Type: env.Type, Field: "data", Reason: err.Error()}
	}
	if err := PT(&v).Validate(); err != nil {
		var de *DecodeError
		if errors.As(err, &de) {
			de.Type = env.Type
			return v, de
		}
		return v, &DecodeError{Type: env.Type, Field: "data", Reason: err.Error()}
	}
	return v, nil
}

// Parse decodes the envelope and the payload of any known event type.
func Parse(b []byte) (Envelope, Payload, error) {
	env, err := Decode(b)
	if err != nil {
		return env, nil, err
	}
	decode, ok := registry[env.Type]
	if !ok {
		return env, nil, &DecodeError{Type: env.Type, Field: "type", Reason: ErrUnknownType.Error()}
	}
	p, err := decode(env)
	return env, p, err
}

var registry = map[string]func(Envelope) (Payload, error){}

func register[T any, PT interface {
	*T
	Payload
}]() {
	var zero T
	registry[PT(&zero).EventType()] = func(env Envelope) (Payload, error) {
		v, err := DecodeData[T, PT](env)
		if err != nil {
			return nil, err
		}
		return PT(&v), nil
	}
}

func fieldErr(field, reason string) error { return &DecodeError{Field: field, Reason: reason} }
