package web

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// HeaderAuthorization carries "Bearer TOKEN": the service token, or on the
// routes that allow it a user token.
const HeaderAuthorization = "Authorization"

// Access says who may call a route.
type Access int

const (
	// AccessService: the service token only. Every route a Guard does not
	// list has it.
	AccessService Access = iota
	// AccessUser: a user's token or the service token. The handler checks
	// that the user owns what the request touches (Allowed).
	AccessUser
	// AccessPublic: anyone.
	AccessPublic
)

// publicRoutes are open on every service: liveness, readiness (which never
// shows a secret) and metrics, read by the launcher and Prometheus.
var publicRoutes = []string{"GET " + PathHealth, "GET " + PathReady, "GET /metrics"}

// Guard authenticates every request before its ServeMux routes it, so the
// handlers never see an unauthenticated caller, and turns away what a
// browser page on another origin could send: a Host the service does not
// answer to (421: DNS rebinding) and a POST or PUT that is not
// application/json (415: a cross-site form or body-less POST needs no CORS
// preflight; JSON does).
type Guard struct {
	// ServiceToken is the bearer every internal caller presents.
	ServiceToken string
	// Users verifies user tokens on AccessUser routes; nil accepts none.
	Users *UserTokens
	// Routes gives the access of ServeMux patterns ("GET /v1/orders/{id}");
	// any other pattern is AccessService, /healthz, /readyz and /metrics AccessPublic.
	Routes map[string]Access
	// Hosts are the Host header values answered; "*" answers any.
	Hosts []string
}

// NewGuard returns a Guard for the service token, refusing an empty one: a
// service must never start open by mistake.
func NewGuard(serviceToken string, hosts []string) (*Guard, error) {
	if serviceToken == "" {
		return nil, errors.New("web: guard without a service token")
	}
	if len(hosts) == 0 {
		return nil, errors.New("web: guard without allowed hosts")
	}
	return &Guard{ServiceToken: serviceToken, Hosts: hosts}, nil
}

// Principal is who a request acts for, once the Guard let it in.
type Principal struct {
	Service bool   // the service token
	User    string // the user of a user token
}

type principalKey struct{}

// PrincipalOf returns the principal the Guard put in ctx (zero: none).
func PrincipalOf(ctx context.Context) Principal {
	p, _ := ctx.Value(principalKey{}).(Principal)
	return p
}

// WithPrincipal returns ctx carrying p (the Guard's doing; tests' too).
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// Allowed reports whether the request's principal may act on what belongs
// to userID: the service may act for anyone, a user for itself only.
func Allowed(ctx context.Context, userID string) bool {
	p := PrincipalOf(ctx)
	return p.Service || (p.User != "" && p.User == userID)
}

// Wrap returns mux behind the guard.
func (g *Guard) Wrap(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !g.hostAllowed(r.Host) {
			WriteError(w, r, nil, Errorf(http.StatusMisdirectedRequest, "Host",
				"this service does not answer to Host %.64q (allowed: %s; set STAMPEDE_ALLOWED_HOSTS or --allowed-hosts)", r.Host, strings.Join(g.Hosts, ", ")))
			return
		}
		if r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch {
			if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
				WriteError(w, r, nil, Errorf(http.StatusUnsupportedMediaType, "Content-Type",
					"content type must be application/json (also on a %s without a body)", r.Method))
				return
			}
		}
		_, pattern := mux.Handler(r)
		if pattern == "" {
			mux.ServeHTTP(w, r) // 404 or 405: nothing runs
			return
		}
		// Middleware labels its metrics with the pattern; it sees a copy of
		// this request (Limit made one), so it is told through the context.
		SetRoute(r.Context(), pattern)
		access := g.access(pattern)
		if access == AccessPublic {
			mux.ServeHTTP(w, r)
			return
		}
		p, err := g.authenticate(r, access)
		if err != nil {
			if err.Status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="stampede"`)
			}
			WriteError(w, r, nil, err)
			return
		}
		mux.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
	})
}

func (g *Guard) access(pattern string) Access {
	if slices.Contains(publicRoutes, pattern) {
		return AccessPublic
	}
	if a, ok := g.Routes[pattern]; ok {
		return a
	}
	return AccessService
}

func (g *Guard) hostAllowed(host string) bool {
	for _, h := range g.Hosts {
		if h == "*" || strings.EqualFold(h, host) {
			return true
		}
	}
	return false
}

func (g *Guard) authenticate(r *http.Request, access Access) (Principal, *Error) {
	who := "the service token"
	if access == AccessUser {
		who = "the service token or the user's token (stampede token user ID)"
	}
	h := r.Header.Get(HeaderAuthorization)
	if h == "" {
		return Principal{}, Errorf(http.StatusUnauthorized, HeaderAuthorization, "missing: send \"%s: Bearer TOKEN\" with %s", HeaderAuthorization, who)
	}
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return Principal{}, Errorf(http.StatusUnauthorized, HeaderAuthorization, "want %s: Bearer TOKEN", HeaderAuthorization)
	}
	if equalSecret(tok, g.ServiceToken) {
		return Principal{Service: true}, nil
	}
	if g.Users != nil && strings.HasPrefix(tok, userTokenPrefix) {
		user, err := g.Users.Verify(tok, time.Now())
		if err != nil {
			return Principal{}, Errorf(http.StatusUnauthorized, HeaderAuthorization, "user token refused: %v", err)
		}
		if access != AccessUser {
			return Principal{}, Errorf(http.StatusForbidden, HeaderAuthorization, "a user token may not call %s %s: the service token only", r.Method, r.URL.Path)
		}
		return Principal{User: user}, nil
	}
	return Principal{}, Errorf(http.StatusUnauthorized, HeaderAuthorization, "wrong token: send %s", who)
}

// equalSecret compares in constant time, also in length: both sides are
// hashed first, so how long the expected token is does not show either.
func equalSecret(got, want string) bool {
	a, b := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// User tokens are "su1.USER.EXPIRY.MAC": USER the user id (base64url),
// EXPIRY the Unix second it ends, MAC the HMAC-SHA256 of the rest under the
// stack's user-token key (base64url). Whoever holds the key issues them
// (`stampede token user ID`); the Orders API accepts one for that user's
// orders until it expires or the key rotates. They are not revocable one by
// one: rotate the key (a full stampede down and up) to revoke them all.
const userTokenPrefix = "su1."

// MaxUserTokenTTL is the longest a user token may live.
const MaxUserTokenTTL = 30 * 24 * time.Hour

// UserTokens issues and verifies user tokens under one key.
type UserTokens struct{ key []byte }

// NewUserTokens returns the issuer and verifier of tokens signed with key.
func NewUserTokens(key []byte) *UserTokens { return &UserTokens{key: key} }

// Issue returns a token for userID valid until now+ttl.
func (u *UserTokens) Issue(userID string, now time.Time, ttl time.Duration) (string, error) {
	if userID == "" {
		return "", errors.New("userId: empty")
	}
	if err := CheckText("userId", userID, 128); err != nil {
		return "", err
	}
	if ttl <= 0 || ttl > MaxUserTokenTTL {
		return "", fmt.Errorf("ttl %s: want more than 0 and at most %s", ttl, MaxUserTokenTTL)
	}
	body := userTokenPrefix + base64.RawURLEncoding.EncodeToString([]byte(userID)) + "." + strconv.FormatInt(now.Add(ttl).Unix(), 10)
	return body + "." + u.mac(body), nil
}

// Verify returns the user a token was issued for, or why it is refused.
func (u *UserTokens) Verify(token string, now time.Time) (string, error) {
	i := strings.LastIndexByte(token, '.')
	if !strings.HasPrefix(token, userTokenPrefix) || i < 0 {
		return "", errors.New("not a user token")
	}
	body, mac := token[:i], token[i+1:]
	if !hmac.Equal([]byte(mac), []byte(u.mac(body))) {
		return "", errors.New("bad signature (issued under another key?)")
	}
	parts := strings.Split(strings.TrimPrefix(body, userTokenPrefix), ".")
	if len(parts) != 2 {
		return "", errors.New("malformed")
	}
	user, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil || len(user) == 0 {
		return "", errors.New("malformed user")
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return "", errors.New("malformed expiry")
	}
	if now.Unix() >= exp {
		return "", fmt.Errorf("expired at %s", time.Unix(exp, 0).UTC().Format(time.RFC3339))
	}
	return string(user), nil
}

func (u *UserTokens) mac(body string) string {
	m := hmac.New(sha256.New, u.key)
	m.Write([]byte(body))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}
