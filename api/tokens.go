package api

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
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
// signatures by the keys of its JWKS document, and exp, iss and aud always. Fetching and
// parsing the JWKS and keeping its keys is github.com/MicahParks/jwkset's, the key lookup for
// golang-jwt keyfunc's: the set is fetched again every Refresh in the background (rotation), and
// a token naming an unknown kid makes one more fetch, at most every MinRefetch (so a flood of
// bad kids cannot hammer the provider, and is refused at once rather than queued); a fetch that
// fails keeps the keys already known.
type OIDC struct {
	JWKSURL, Issuer, Audience string
	Client                    *http.Client
	Refresh, MinRefetch       time.Duration
	Now                       func() time.Time

	once    sync.Once
	keys    keyfunc.Keyfunc
	store   jwkset.Storage // the keys, replaced whole by every fetch
	client  *http.Client   // Client, counting its requests
	unknown *rate.Limiter  // fetches for unknown kids
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

// start fetches the key set on first use, with the settings as they are then, and starts its
// background refresh (until Close). A provider that is down at start is tried again by the
// background refresh and by an unknown kid once MinRefetch has passed.
func (o *OIDC) start() error {
	o.once.Do(func() {
		client := *o.Client
		if client.Transport == nil {
			client.Transport = http.DefaultTransport
		}
		client.Transport = counting{client.Transport, &o.Fetches}
		o.client = &client
		limit := rate.Inf
		if o.MinRefetch > 0 {
			limit = rate.Every(o.MinRefetch)
		}
		o.unknown = rate.NewLimiter(limit, 1)
		o.unknown.Allow() // the first fetch, now
		ctx, stop := context.WithCancel(context.Background())
		o.stop, o.store = stop, jwkset.NewMemoryStorage()
		if _, err := jwkset.NewStorageFromHTTP(o.JWKSURL, o.fetchOptions(ctx, o.Refresh)); err != nil {
			o.initErr = err
			return
		}
		o.keys, o.initErr = keyfunc.New(keyfunc.Options{Ctx: ctx, Storage: o.store})
	})
	return o.initErr
}

// fetchOptions fetch the JWKS into the shared store; with every > 0 again and again in the
// background until ctx ends.
func (o *OIDC) fetchOptions(ctx context.Context, every time.Duration) jwkset.HTTPClientStorageOptions {
	return jwkset.HTTPClientStorageOptions{Client: o.client, Ctx: ctx, HTTPTimeout: cmp.Or(o.client.Timeout, 5*time.Second),
		NoErrorReturnFirstHTTPReq: every > 0, RefreshInterval: every, Storage: o.store,
		RefreshErrorHandler: func(_ context.Context, err error) {
			slog.Warn("fetching the identity provider's keys failed; the known keys stay", "url", o.JWKSURL, "error", err)
		}}
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
		if errors.Is(err, jwkset.ErrKeyNotFound) && o.unknown.Allow() {
			// A kid the set does not hold: fetch it once more (rotation), then look again.
			if _, ferr := jwkset.NewStorageFromHTTP(o.JWKSURL, o.fetchOptions(ctx, 0)); ferr != nil {
				slog.Warn("fetching the identity provider's keys for an unknown kid failed", "url", o.JWKSURL, "error", ferr)
			} else {
				k, err = lookup(t)
			}
		}
		if errors.Is(err, jwkset.ErrKeyNotFound) {
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
