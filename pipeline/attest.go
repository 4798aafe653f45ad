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

// Attested is what an attestation says.
type Attested struct {
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
