package api

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/driftline/driftline/pipeline"
)

// Attester signs approval decisions with the API's own Ed25519 key (a compact JWS through
// golang-jwt); the workflow verifies them with pipeline.VerifyAttestation.
type Attester struct {
	key ed25519.PrivateKey
	kid string
	// TTL is how long an attestation is valid: long enough to reach the workflow, short
	// enough that a leaked one is soon useless.
	TTL    time.Duration
	Issuer string
}

// NewAttester uses key; its kid is a digest of the public key.
func NewAttester(key ed25519.PrivateKey) *Attester {
	sum := sha256.Sum256(key.Public().(ed25519.PublicKey))
	return &Attester{key: key, kid: "dl-" + hex.EncodeToString(sum[:8]), TTL: 10 * time.Minute, Issuer: "driftline-api"}
}

// LoadAttester reads an Ed25519 seed (32 bytes, hex) from a file, or with create, writes a new
// one there (0600) when the file does not exist.
func LoadAttester(path string, create bool) (*Attester, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) && create {
		seed := make([]byte, ed25519.SeedSize)
		if _, err := rand.Read(seed); err != nil {
			return nil, err
		}
		if err := os.WriteFile(path, []byte(hex.EncodeToString(seed)+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("write attestation key: %w", err)
		}
		return NewAttester(ed25519.NewKeyFromSeed(seed)), nil
	}
	if err != nil {
		return nil, fmt.Errorf("read attestation key: %w", err)
	}
	seed, err := hex.DecodeString(string(trimSpace(b)))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("attestation key %s: want %d hex-encoded bytes", path, ed25519.SeedSize)
	}
	return NewAttester(ed25519.NewKeyFromSeed(seed)), nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// Key is the verifying key, as the workflow receives it.
func (a *Attester) Key() pipeline.AttestationKey {
	return pipeline.AttestationKey{KID: a.kid, PublicKey: base64.RawURLEncoding.EncodeToString(a.key.Public().(ed25519.PublicKey))}
}

type attestClaims struct {
	pipeline.Attested
}

func (c attestClaims) GetExpirationTime() (*jwt.NumericDate, error) {
	return jwt.NewNumericDate(time.Unix(c.Expires, 0)), nil
}
func (c attestClaims) GetIssuedAt() (*jwt.NumericDate, error) {
	return jwt.NewNumericDate(time.Unix(c.IssuedAt, 0)), nil
}
func (c attestClaims) GetNotBefore() (*jwt.NumericDate, error) { return nil, nil }
func (c attestClaims) GetIssuer() (string, error)              { return c.Issuer, nil }
func (c attestClaims) GetSubject() (string, error)             { return c.Subject, nil }
func (c attestClaims) GetAudience() (jwt.ClaimStrings, error)  { return nil, nil }

// Sign attests a decision; the id (jti) is random, so each attestation is used once.
func (a *Attester) Sign(d pipeline.Attested, now time.Time) (string, pipeline.Attested, error) {
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return "", d, err
	}
	d.ID, d.Issuer = hex.EncodeToString(id), a.Issuer
	d.IssuedAt, d.Expires = now.Unix(), now.Add(a.TTL).Unix()
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, attestClaims{d})
	t.Header["kid"] = a.kid
	t.Header["typ"] = pipeline.AttestationType
	s, err := t.SignedString(a.key)
	return s, d, err
}

// Lifetimes of origin attestations: a run's is checked at its policy step, hours or days after
// it started (and bound to its start time); a monitor's and a schedule's for as long as they
// run.
const (
	RunOriginTTL      = 30 * 24 * time.Hour
	StandingOriginTTL = 10 * 365 * 24 * time.Hour
)

// SignOrigin attests that the API started a run, monitor or schedule (d.Kind) for d.Subject.
func (a *Attester) SignOrigin(d pipeline.Attested, now time.Time) (string, pipeline.Attested, error) {
	if !d.IsOrigin() {
		return "", d, fmt.Errorf("attestation kind %q is not an origin", d.Kind)
	}
	o := *a
	o.TTL = StandingOriginTTL
	if d.Kind == pipeline.KindRun {
		o.TTL = RunOriginTTL
	}
	return o.Sign(d, now)
}
