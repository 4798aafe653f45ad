package api

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

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
// signatures by the keys of its JWKS document, and exp, iss and aud always. Keys are cached
// and fetched again after Refresh (rotation); a token naming an unknown kid makes one more
// fetch, at most every MinRefetch (so a flood of bad kids cannot hammer the provider).
type OIDC struct {
	JWKSURL, Issuer, Audience string
	Client                    *http.Client
	Refresh, MinRefetch       time.Duration
	Now                       func() time.Time

	mu      sync.Mutex
	keys    map[string]crypto.PublicKey
	fetched time.Time // last successful fetch
	tried   time.Time // last attempt
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

// Verify implements Verifier.
func (o *OIDC) Verify(ctx context.Context, token string) (policies.Subject, error) {
	var claims Claims
	_, err := jwt.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		return o.key(ctx, kid)
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

// key returns the public key of kid, fetching the JWKS when the cache is stale or, rate
// limited, when kid is unknown.
func (o *OIDC) key(ctx context.Context, kid string) (crypto.PublicKey, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := o.now()
	stale := o.keys == nil || now.Sub(o.fetched) >= o.Refresh
	if k, ok := o.keys[kid]; ok && !stale {
		return k, nil
	}
	if stale || now.Sub(o.tried) >= o.MinRefetch {
		o.tried = now
		keys, err := o.fetch(ctx)
		if err != nil && o.keys == nil {
			return nil, fmt.Errorf("fetch the identity provider's keys: %w", err)
		}
		if err == nil {
			o.keys, o.fetched = keys, now
		}
	}
	if k, ok := o.keys[kid]; ok {
		return k, nil
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownKey, kid)
}

func (o *OIDC) fetch(ctx context.Context) (map[string]crypto.PublicKey, error) {
	o.Fetches.Add(1)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.JWKSURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := o.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered HTTP %d", o.JWKSURL, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	return ParseJWKS(body)
}

// JWK is one key of a JWKS document (RFC 7517): RSA, EC P-256 or OKP Ed25519 public keys.
type JWK struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use,omitempty"`
	Alg string `json:"alg,omitempty"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
}

// ParseJWKS reads the signing keys of a JWKS document by kid; keys for encryption, without a
// kid, or of other types are skipped.
func ParseJWKS(data []byte) (map[string]crypto.PublicKey, error) {
	var doc struct {
		Keys []JWK `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	out := map[string]crypto.PublicKey{}
	for i, k := range doc.Keys {
		if k.Kid == "" || k.Use == "enc" {
			continue
		}
		pk, err := k.PublicKey()
		if err != nil {
			return nil, fmt.Errorf("jwks key %d (%s): %w", i, k.Kid, err)
		}
		if pk != nil {
			out[k.Kid] = pk
		}
	}
	return out, nil
}

func b64(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

// PublicKey decodes the key; nil for a key type Driftline does not verify with.
func (k JWK) PublicKey() (crypto.PublicKey, error) {
	switch k.Kty {
	case "RSA":
		n, err1 := b64(k.N)
		e, err2 := b64(k.E)
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		if len(n) < 256 {
			return nil, fmt.Errorf("RSA key of %d bits: at least 2048 are required", 8*len(n))
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}, nil
	case "EC":
		if k.Crv != "P-256" {
			return nil, fmt.Errorf("EC curve %q: only P-256 (ES256)", k.Crv)
		}
		x, err1 := b64(k.X)
		y, err2 := b64(k.Y)
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		if len(x) != 32 || len(y) != 32 {
			return nil, errors.New("P-256 coordinates must be 32 bytes")
		}
		pk, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return nil, fmt.Errorf("EC point: %w", err)
		}
		return pk, nil
	case "OKP":
		if k.Crv != "Ed25519" {
			return nil, fmt.Errorf("OKP curve %q: only Ed25519", k.Crv)
		}
		x, err := b64(k.X)
		if err != nil {
			return nil, err
		}
		if len(x) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("Ed25519 key of %d bytes", len(x))
		}
		return ed25519.PublicKey(x), nil
	}
	return nil, nil
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
