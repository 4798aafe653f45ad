package pipeline

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// An approval attestation is the control-plane API's signed statement of one decision: a
// compact JWS (EdDSA, Ed25519) whose payload is Attested. The API signs it after it has
// authenticated and authorised the caller; the workflow verifies it with the public keys it
// learns by an activity, so an approval cannot be forged by whoever can reach Temporal.
// Verification is here (standard library only) so workflow code can run it.

// AttestationType is the JWS "typ" of an attestation.
const AttestationType = "driftline-approval+jwt"

// Kinds of attestation: a human decision (approval, review) or the origin of a run or a
// monitor, which the API signs when it starts one for an authenticated caller.
const (
	KindApproval = ""         // an approval or rejection of a candidate (the original kind)
	KindReview   = "review"   // an acknowledgement of a fairness review
	KindRun      = "run"      // a run started through the API
	KindMonitor  = "monitor"  // a monitor started through the API (and the runs it starts)
	KindSchedule = "schedule" // a schedule created through the API (and the runs it starts)
)

// Attested is what an attestation says.
type Attested struct {
	Kind    string `json:"kind,omitempty"`
	Model   string `json:"model"`
	Version int    `json:"version"`
	RunID   string `json:"run_id"`
	// Review is the fairness review an acknowledgement decides (empty for approvals).
	Review   string   `json:"review,omitempty"`
	Decision string   `json:"decision"` // approve or reject; accept, retrain or rollback for a review
	Subject  string   `json:"sub"`
	Groups   []string `json:"groups,omitempty"`
	Reason   string   `json:"reason"`
	IssuedAt int64    `json:"iat"`
	Expires  int64    `json:"exp"`
	ID       string   `json:"jti"`
	Issuer   string   `json:"iss"`
	// SpecVersion and SpecHash: the registered spec an origin was signed for.
	SpecVersion int    `json:"spec_version,omitempty"`
	SpecHash    string `json:"spec_hash,omitempty"`
}

// IsOrigin reports whether the attestation is a run's or a monitor's origin.
func (a Attested) IsOrigin() bool {
	return a.Kind == KindRun || a.Kind == KindMonitor || a.Kind == KindSchedule
}

// AttestationKey is a verifying key: its kid and the Ed25519 public key (base64url, no padding).
type AttestationKey struct {
	KID       string `json:"kid"`
	PublicKey string `json:"x"`
}

// ErrAttestation marks an attestation that does not verify.
var ErrAttestation = errors.New("attestation refused")

// VerifyAttestation checks the signature with the key named by the token's kid, and that it
// has not expired at now; it returns what the attestation says.
func VerifyAttestation(token string, keys []AttestationKey, now time.Time) (Attested, error) {
	var a Attested
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return a, fmt.Errorf("%w: not a compact JWS", ErrAttestation)
	}
	var hdr struct {
		Alg, Kid, Typ string
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil || json.Unmarshal(raw, &hdr) != nil {
		return a, fmt.Errorf("%w: bad header", ErrAttestation)
	}
	if hdr.Alg != "EdDSA" || hdr.Typ != AttestationType {
		return a, fmt.Errorf("%w: alg %q typ %q, want EdDSA %s", ErrAttestation, hdr.Alg, hdr.Typ, AttestationType)
	}
	var pub ed25519.PublicKey
	for _, k := range keys {
		if k.KID == hdr.Kid {
			b, err := base64.RawURLEncoding.DecodeString(k.PublicKey)
			if err == nil && len(b) == ed25519.PublicKeySize {
				pub = b
			}
		}
	}
	if pub == nil {
		return a, fmt.Errorf("%w: unknown key %q", ErrAttestation, hdr.Kid)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || !ed25519.Verify(pub, []byte(parts[0]+"."+parts[1]), sig) {
		return a, fmt.Errorf("%w: bad signature", ErrAttestation)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || json.Unmarshal(payload, &a) != nil {
		return a, fmt.Errorf("%w: bad payload", ErrAttestation)
	}
	if a.Expires <= now.Unix() {
		return a, fmt.Errorf("%w: expired at %s", ErrAttestation, time.Unix(a.Expires, 0).UTC().Format(time.RFC3339))
	}
	if a.ID == "" {
		return a, fmt.Errorf("%w: no jti", ErrAttestation)
	}
	return a, nil
}

// VerifyOrigin checks a run's origin attestation: a valid attestation of kind run, monitor or
// schedule for this model; a run's own origin must have been issued within a few minutes
// before the run started (startedAt, the server's record), so it cannot be reused for
// another run later. It returns what the origin says.
func VerifyOrigin(token string, keys []AttestationKey, model string, startedAt, now time.Time) (Attested, error) {
	a, err := VerifyAttestation(token, keys, now)
	switch {
	case err != nil:
		return a, err
	case !a.IsOrigin():
		return a, fmt.Errorf("%w: a %q attestation is not the origin of a run", ErrAttestation, a.Kind)
	case a.Model != model:
		return a, fmt.Errorf("%w: the origin is for model %s, not %s", ErrAttestation, a.Model, model)
	case a.Kind == KindRun && !startedAt.IsZero() &&
		(time.Unix(a.IssuedAt, 0).Before(startedAt.Add(-OriginSkew)) || time.Unix(a.IssuedAt, 0).After(startedAt.Add(OriginSkew))):
		return a, fmt.Errorf("%w: the origin was issued at %s, the run started at %s: it belongs to another run",
			ErrAttestation, time.Unix(a.IssuedAt, 0).UTC().Format(time.RFC3339), startedAt.UTC().Format(time.RFC3339))
	}
	return a, nil
}

// OriginSkew is how far a run's origin may be issued from the run's start.
const OriginSkew = 2 * time.Minute

// SignAttestation makes the compact JWS VerifyAttestation checks (EdDSA over the payload,
// the key named by kid). The control-plane API signs through its Attester; this is the same
// format in the standard library, for tools and tests that hold a key.
func SignAttestation(key ed25519.PrivateKey, kid string, a Attested) string {
	enc := func(v any) string {
		b, _ := json.Marshal(v) // plain data: cannot fail
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signing := enc(map[string]string{"alg": "EdDSA", "kid": kid, "typ": AttestationType}) + "." + enc(a)
	return signing + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(key, []byte(signing)))
}
