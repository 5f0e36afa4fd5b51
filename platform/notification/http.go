package notification

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"strings"

	"github.com/hibiken/asynq"

	"github.com/stampede-dev/stampede/platform/web"
)

// Service serves the Notifications HTTP API.
type Service struct {
	Store     *Store
	Inspector *asynq.Inspector // nil: notifications still in the queue are not shown
	Log       *slog.Logger
	Ready     func(ctx context.Context) error
}

// Router returns the routes of the API, /healthz and /readyz.
func (s *Service) Router() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/notifications", s.list)
	mux.HandleFunc("PUT /v1/contacts/{userId}", s.putContact)
	mux.HandleFunc("GET /v1/contacts/{userId}", s.getContact)
	web.HandleHealth(mux, s.Ready)
	return mux
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// list answers every notification of an order with each channel's attempts
// and outcome, including those still waiting in the queue.
func (s *Service) list(w http.ResponseWriter, r *http.Request) {
	orderID := r.URL.Query().Get("orderId")
	if orderID == "" {
		web.WriteError(w, r, s.Log, web.Errorf(http.StatusBadRequest, "orderId", "query parameter orderId is required"))
		return
	}
	if !idPattern.MatchString(orderID) {
		web.WriteError(w, r, s.Log, web.Errorf(http.StatusBadRequest, "orderId", "orderId must be 1-128 letters, digits or ._:-"))
		return
	}
	ns, err := s.Store.ByOrder(r.Context(), orderID)
	if err != nil {
		web.WriteError(w, r, s.Log, err)
		return
	}
	if s.Inspector != nil {
		states, err := TaskStates(s.Inspector, orderID)
		if err != nil {
			s.Log.WarnContext(r.Context(), "read task states", "order_id", orderID, "err", err)
		}
		seen := map[string]bool{}
		for i := range ns {
			seen[ns[i].Template] = true
			if ti, ok := states[ns[i].Template]; ok {
				ns[i].TaskState = ti.State.String()
			}
		}
		for _, t := range Templates {
			ti, ok := states[t]
			if !ok || seen[t] {
				continue
			}
			n := Notification{OrderID: orderID, Template: t, Status: StatusQueued, TaskState: ti.State.String(), Channels: []Delivery{}}
			if p, err := DecodePayload(ti.Payload); err == nil {
				n.UserID, n.CorrelationID, n.RequestedAt = p.UserID, p.CorrelationID, p.RequestedAt
			}
			ns = append(ns, n)
		}
	}
	if ns == nil {
		ns = []Notification{}
	}
	web.WriteJSON(w, http.StatusOK, map[string]any{"orderId": orderID, "notifications": ns})
}

// ContactRequest is the body of PUT /v1/contacts/{userId}; an omitted or
// empty address means the user is not reached on that channel.
type ContactRequest struct {
	Email     string `json:"email"`
	Phone     string `json:"phone"`
	PushToken string `json:"pushToken"`
}

var (
	emailPattern = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s]+$`)
	phonePattern = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
)

// ParseContact validates a contact body for userID and names the bad field.
func ParseContact(userID string, body []byte) (Contact, error) {
	if !idPattern.MatchString(userID) {
		return Contact{}, web.Errorf(http.StatusBadRequest, "userId", "userId must be 1-128 letters, digits or ._:-")
	}
	var req ContactRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &te):
			return Contact{}, web.Errorf(http.StatusBadRequest, te.Field, "%s must be a string", te.Field)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return Contact{}, web.Errorf(http.StatusBadRequest, f, "unknown field %s (known: email, phone, pushToken)", f)
		}
		return Contact{}, web.Errorf(http.StatusBadRequest, "", "body must be a JSON object: %v", err)
	}
	c := Contact{UserID: userID, Email: strings.TrimSpace(req.Email), Phone: strings.TrimSpace(req.Phone), PushToken: strings.TrimSpace(req.PushToken)}
	// Stored as text: a NUL or bytes that are not UTF-8 are a 400 naming the
	// field, not PostgreSQL's refusal.
	for _, f := range []struct{ name, v string }{{"email", c.Email}, {"phone", c.Phone}, {"pushToken", c.PushToken}} {
		if err := web.CheckText(f.name, f.v, 4096); err != nil {
			return Contact{}, err
		}
	}
	switch {
	case c.Email != "" && (len(c.Email) > 254 || !emailPattern.MatchString(c.Email)):
		return Contact{}, web.Errorf(http.StatusBadRequest, "email", "email must look like name@example.com")
	case c.Phone != "" && !phonePattern.MatchString(c.Phone):
		return Contact{}, web.Errorf(http.StatusBadRequest, "phone", "phone must be E.164, e.g. +15551234567")
	case len(c.PushToken) > 4096 || strings.ContainsAny(c.PushToken, " \t\r\n"):
		return Contact{}, web.Errorf(http.StatusBadRequest, "pushToken", "pushToken must be at most 4096 characters without spaces")
	}
	return c, nil
}

func (s *Service) putContact(w http.ResponseWriter, r *http.Request) {
	body, err := web.ReadJSONBody(r, 16<<10)
	if err != nil {
		web.WriteError(w, r, s.Log, err)
		return
	}
	c, err := ParseContact(r.PathValue("userId"), body)
	if err != nil {
		web.WriteError(w, r, s.Log, err)
		return
	}
	if err := s.Store.PutContact(r.Context(), c); err != nil {
		web.WriteError(w, r, s.Log, err)
		return
	}
	web.WriteJSON(w, http.StatusOK, c)
}

func (s *Service) getContact(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("userId")
	if !idPattern.MatchString(id) {
		web.WriteError(w, r, s.Log, web.Errorf(http.StatusBadRequest, "userId", "userId must be 1-128 letters, digits or ._:-"))
		return
	}
	c, ok, err := s.Store.Contact(r.Context(), id)
	if err != nil {
		web.WriteError(w, r, s.Log, err)
		return
	}
	if !ok {
		web.WriteError(w, r, s.Log, web.Errorf(http.StatusNotFound, "userId", "no contact for user %s", id))
		return
	}
	web.WriteJSON(w, http.StatusOK, c)
}
