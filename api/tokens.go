package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"

	"github.com/driftline/driftline/policies"
)

// Verifier checks a bearer token and returns the identity it proves.
type Verifier interface {
	Verify(ctx context.Context, token string) (policies.Subject, error)
}

// Claims are the token claims Driftline reads: the registered ones and the groups.
type Claims struct {
	Groups []string `json:"groups,omitempty"`
	jwt.RegisteredClaims
}

// ErrUnknownKey: the token names a key the identity provider does not publish.
var ErrUnknownKey = errors.New("unknown signing key")

// leeway is the clock skew tolerated on exp, nbf and iat.
const leeway = 30 * time.Second

// OIDC verifies tokens of an OpenID Connect identity provider: RS256, ES256 or EdDSA
// signatures by the keys of its JWKS document, and exp, iss and aud always. Fetching, parsing,
// caching and rotating the keys is github.com/MicahParks/keyfunc's (over jwkset): the set is
// refreshed every Refresh, and a token naming an unknown kid makes one more fetch, at most every
// MinRefetch (so a flood of bad kids cannot hammer the provider); a fetch that fails keeps the
// keys already known.
type OIDC struct {
	JWKSURL, Issuer, Audience string
	Client                    *http.Client
	Refresh, MinRefetch       time.Duration
	Now                       func() time.Time

	once    sync.Once
	keys    keyfunc.Keyfunc
	initErr error
	stop    context.CancelFunc
	// Fetches counts JWKS requests (for tests and metrics).
	Fetches atomic.Int64
}

// NewOIDC checks the configuration: production verification needs all three.
func NewOIDC(jwksURL, issuer, audience string) (*OIDC, error) {
	if jwksURL == "" || issuer == "" || audience == "" {
		return nil, fmt.Errorf("oidc: --jwks-url, --issuer and --audience are all required outside --dev (got %q, %q, %q)", jwksURL, issuer, audience)
	}
	return &OIDC{JWKSURL: jwksURL, Issuer: issuer, Audience: audience, Client: &http.Client{Timeout: 5 * time.Second},
		Refresh: 15 * time.Minute, MinRefetch: 30 * time.Second}, nil
}

func (o *OIDC) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// counting counts the requests of the key set's fetches.
type counting struct {
	next http.RoundTripper
	n    *atomic.Int64
}

func (c counting) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}

// start makes the key set on first use, with the settings as they are then; its refresh
// goroutine runs until Close.
func (o *OIDC) start() error {
	o.once.Do(func() {
		client := *o.Client
		if client.Transport == nil {
			client.Transport = http.DefaultTransport
		}
		client.Transport = counting{client.Transport, &o.Fetches}
		limit := rate.Inf
		if o.MinRefetch > 0 {
			limit = rate.Every(o.MinRefetch)
		}
		ctx, stop := context.WithCancel(context.Background())
		o.stop = stop
		noFirstErr := true // an identity provider that is down at start is tried again
		o.keys, o.initErr = keyfunc.NewDefaultOverrideCtx(ctx, []string{o.JWKSURL}, keyfunc.Override{
			Client: &client, HTTPTimeout: client.Timeout, NoErrorReturnFirstHTTPReq: &noFirstErr,
			RefreshInterval: o.Refresh, RefreshUnknownKID: rate.NewLimiter(limit, 1),
			RateLimitWaitMax: time.Millisecond, // within MinRefetch an unknown kid is refused at once, not queued
			RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
				return func(_ context.Context, err error) {
					slog.Warn("fetching the identity provider's keys failed; the known keys stay", "url", u, "error", err)
				}
			},
		})
	})
	return o.initErr
}

// Close stops the key set's refreshes.
func (o *OIDC) Close() {
	if o.stop != nil {
		o.stop()
	}
}

// Verify implements Verifier.
func (o *OIDC) Verify(ctx context.Context, token string) (policies.Subject, error) {
	if err := o.start(); err != nil {
		return policies.Subject{}, fmt.Errorf("the identity provider's keys: %w", err)
	}
	lookup := o.keys.KeyfuncCtx(ctx)
	var claims Claims
	_, err := jwt.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
		k, err := lookup(t)
		// Not in the set, or in it after no refresh (one would exceed MinRefetch): keyfunc
		// reports both as a failed read of the storage.
		if errors.Is(err, jwkset.ErrKeyNotFound) || err != nil && strings.Contains(err.Error(), "could not read JWK from storage") {
			kid, _ := t.Header["kid"].(string)
			return nil, fmt.Errorf("%w %q", ErrUnknownKey, kid)
		}
		return k, err
	}, jwt.WithValidMethods([]string{"RS256", "ES256", "EdDSA"}), jwt.WithExpirationRequired(), jwt.WithIssuer(o.Issuer),
		jwt.WithAudience(o.Audience), jwt.WithLeeway(leeway), jwt.WithIssuedAt(), jwt.WithTimeFunc(o.now))
	if err != nil {
		return policies.Subject{}, fmt.Errorf("invalid token: %w", err)
	}
	return subject(claims)
}

func subject(c Claims) (policies.Subject, error) {
	if c.Subject == "" {
		return policies.Subject{}, errors.New("invalid token: no subject")
	}
	return policies.Subject{ID: c.Subject, Groups: c.Groups}, nil
}

// DevHS256 verifies HS256 tokens with a shared secret: development only (`driftline api
// --dev`, which says so at start). iss and aud are still checked.
type DevHS256 struct {
	Secret []byte
	Now    func() time.Time
}

// DevIssuer and DevAudience are what development tokens carry.
const (
	DevIssuer   = "driftline-dev"
	DevAudience = "driftline"
)

// Verify implements Verifier.
func (d DevHS256) Verify(_ context.Context, token string) (policies.Subject, error) {
	var claims Claims
	opts := []jwt.ParserOption{jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired(), jwt.WithIssuer(DevIssuer),
		jwt.WithAudience(DevAudience), jwt.WithLeeway(leeway)}
	if d.Now != nil {
		opts = append(opts, jwt.WithTimeFunc(d.Now))
	}
	if _, err := jwt.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) { return d.Secret, nil }, opts...); err != nil {
		return policies.Subject{}, fmt.Errorf("invalid token: %w", err)
	}
	return subject(claims)
}

// MintDev makes a development HS256 token (production tokens come from the identity provider).
func MintDev(secret []byte, sub string, groups []string, ttl time.Duration) (string, error) {
	now := time.Now()
	return jwt.NewWithClaims(jwt.SigningMethodHS256, Claims{Groups: groups, RegisteredClaims: jwt.RegisteredClaims{
		Issuer: DevIssuer, Audience: jwt.ClaimStrings{DevAudience}, Subject: sub,
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(ttl))}}).SignedString(secret)
}
